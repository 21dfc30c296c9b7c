"""ptcourse.bert: recipe, model checks, losses and metrics, optimizer, the run, fill-mask, the checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import ptcourse.bert as bert
from ptcourse.bert import (
    PretrainingRecipe,
    as_masked_lm,
    check_compatible,
    fill_mask_examples,
    fill_mask_hits,
    held_out_scores,
    make_optimizer,
    mini_bert_checkpoint,
    mini_bert_config,
    mlm_accuracy,
    new_mini_bert,
    nsp_accuracy,
    prepare_data,
    pretrain,
    pretraining_losses,
    pretraining_recipe,
)
from ptcourse.text import Corpus

TINY = PretrainingRecipe(vocab_size=150, max_len=32, hidden_size=32, num_layers=1, num_heads=2,
                         intermediate_size=64, max_documents=None, n_pairs=96, n_held_out_pairs=32, epochs=2,
                         batch_size=8, grad_accum_steps=2, lr=3e-3, warmup_fraction=0.1, dropout=0.0)
SUBJECTS = ["the cat", "a dog", "the ship", "my sister", "the river", "our teacher", "the engine", "a farmer"]
VERBS = ["sees", "likes", "follows", "paints", "carries", "watches"]
OBJECTS = ["the moon", "a red kite", "the old bridge", "some bread", "the green hills", "a small boat"]


def _corpus(name: str, n_docs: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    docs = [[f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} today."
             for _ in range(rng.randint(4, 9))] for _ in range(n_docs)]
    return Corpus(name, docs)


@pytest.fixture(scope="module")
def data():
    return prepare_data(TINY, corpora=(_corpus("toy train", 40, 0), _corpus("toy held out", 12, 1)))


# ---------------------------------------------------------------- recipe and model
@pytest.mark.parametrize("name", ["fast", "standard", "full"])
def test_recipes_are_consistent(monkeypatch, name):
    monkeypatch.setenv("PTCOURSE_PROFILE", name)
    r = pretraining_recipe()
    assert r.hidden_size % r.num_heads == 0 and r.n_held_out_pairs < r.n_pairs and 0 < r.warmup_fraction < 0.5
    if name == "full":
        assert r.num_layers >= 4 and r.hidden_size >= 256  # the size the course promises on one GPU


def test_profiles_grow(monkeypatch):
    sizes = {}
    for name in ("fast", "standard", "full"):
        monkeypatch.setenv("PTCOURSE_PROFILE", name)
        r = pretraining_recipe()
        sizes[name] = (r.hidden_size * r.num_layers, r.n_pairs * r.epochs)
    assert sizes["fast"] < sizes["standard"] < sizes["full"]


def test_config_has_the_recipe_sizes_and_sdpa():
    config = mini_bert_config(150, TINY)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.max_position_embeddings) == (
        150, 32, 1, 32)
    assert config._attn_implementation == "sdpa" and config.hidden_dropout_prob == 0.0
    assert new_mini_bert(list(range(150)), TINY).config._attn_implementation == "sdpa"


def test_new_mini_bert_is_seeded():
    a, b = new_mini_bert(list(range(150)), TINY), new_mini_bert(list(range(150)), TINY)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_check_compatible_catches_mismatches(data):
    model = new_mini_bert(data.tokenizer, TINY)
    check_compatible(model, data.tokenizer, max_len=32)
    other = new_mini_bert(list(range(len(data.tokenizer) + 7)), TINY)
    with pytest.raises(ValueError, match=rf"tokenizer has {len(data.tokenizer)} tokens but the model's vocab_size"):
        check_compatible(other, data.tokenizer)
    with pytest.raises(ValueError, match="longer than the model's max_position_embeddings=32"):
        check_compatible(model, data.tokenizer, max_len=33)
    with pytest.raises(ValueError, match="longer than the model's max_position_embeddings"):
        check_compatible(model, data.tokenizer, max_len=np.int64(64))
    with pytest.raises(TypeError, match="Hugging Face BERT model"):
        check_compatible(torch.nn.Linear(2, 2), data.tokenizer)


def test_pretrain_refuses_a_recipe_longer_than_the_tokenizer_allows(data):
    with pytest.raises(ValueError, match="model_max_length"):
        bert.PretrainingDataset(data.train_set.pairs, data.tokenizer, max_len=64)


# ---------------------------------------------------------------- losses and metrics
def test_losses_decompose_bert_loss(data):
    model = new_mini_bert(data.tokenizer, TINY).eval()
    batch = data.held_out_batches[0]
    with torch.no_grad():
        out = model(**batch)
    chosen = batch["labels"] != -100
    mlm = torch.nn.functional.cross_entropy(out.prediction_logits[chosen], batch["labels"][chosen])
    nsp = torch.nn.functional.cross_entropy(out.seq_relationship_logits, batch["next_sentence_label"])
    losses = pretraining_losses(out, batch)
    assert torch.allclose(losses["mlm_loss"], mlm, atol=1e-5) and torch.allclose(losses["nsp_loss"], nsp, atol=1e-6)
    assert torch.allclose(losses["loss"], out.loss)
    assert torch.allclose(pretraining_losses(out, batch, nsp_weight=0.0)["loss"], mlm, atol=1e-5)


def test_without_labels_the_loss_is_none_and_we_say_so(data):
    model = new_mini_bert(data.tokenizer, TINY).eval()
    batch = {k: v for k, v in data.held_out_batches[0].items() if k not in ("labels", "next_sentence_label")}
    with torch.no_grad():
        out = model(**batch)
    assert out.loss is None
    with pytest.raises(ValueError, match="needs both labels and next_sentence_label"):
        pretraining_losses(out, {**batch, "next_sentence_label": torch.zeros(len(batch["input_ids"]), dtype=int)})


def test_metrics_count_only_masked_positions_and_pairs():
    logits = torch.zeros(2, 3, 5)
    logits[0, 0, 4] = logits[0, 1, 2] = logits[1, 2, 1] = 1.0
    batch = {"labels": torch.tensor([[4, 3, -100], [-100, -100, 1]]), "next_sentence_label": torch.tensor([0, 1])}
    out = SimpleNamespace(prediction_logits=logits, seq_relationship_logits=torch.tensor([[2.0, 0.0], [3.0, 1.0]]))
    assert mlm_accuracy(out, batch).item() == pytest.approx(2 / 3)
    assert nsp_accuracy(out, batch).item() == pytest.approx(0.5)


def test_optimizer_decays_only_matrices_and_warms_up_linearly(data):
    model = new_mini_bert(data.tokenizer, TINY)
    optimizer, scheduler = make_optimizer(model, TINY, steps=20)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.ndim >= 2), name  # biases and LayerNorm weights are not decayed
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    warmup = 2  # round(0.1 * 20)
    assert lrs[0] == 0 and lrs[warmup] == pytest.approx(TINY.lr)
    assert lrs[warmup + 9] == pytest.approx(TINY.lr * (20 - warmup - 9) / (20 - warmup))
    assert optimizer.param_groups[0]["lr"] == 0


def test_initial_loss_is_log_vocab_within_the_init_scale(data):
    """At init the MLM logits are ~N(0, s^2) with s = initializer_range * sqrt(hidden), so the loss is
    ln V + s^2 / 2; a 10x larger init (a common mistake: unit-variance embeddings) is far outside."""
    for scale, inside in ((1.0, True), (10.0, False)):
        recipe = dataclasses.replace(TINY, hidden_size=64, intermediate_size=128)
        model = new_mini_bert(data.tokenizer, recipe)
        if scale != 1.0:
            with torch.no_grad():
                model.bert.embeddings.word_embeddings.weight.mul_(scale)
        scores = held_out_scores(model, data.held_out_batches * 4)
        s2 = model.config.initializer_range ** 2 * model.config.hidden_size  # what the config promises
        predicted = math.log(len(data.tokenizer)) + s2 / 2
        tolerance = 0.02 + 4 * math.sqrt(s2 / len(scores["mlm_loss"]))
        got = scores["mlm_loss"].mean().item()
        assert (abs(got - predicted) < tolerance) == inside, (scale, got, predicted)
        assert abs(got - math.log(len(data.tokenizer))) < 0.05 if inside else got - math.log(len(data.tokenizer)) > 0.5


# ---------------------------------------------------------------- the run
def test_pretrain_is_reproducible_and_learns(data):
    a = pretrain(TINY, data, progress=False)
    b = pretrain(TINY, data, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    h = a.history
    assert {"train_mlm_loss", "train_nsp_loss", "val_mlm_loss", "val_nsp_loss", "val_mlm_acc", "val_nsp_acc"} <= set(h)
    assert h["val_mlm_loss"].iloc[-1] < math.log(len(data.tokenizer)) - 0.5  # it learned something
    assert a.seconds > 0 and a.recipe == TINY


def test_train_loader_groups_pairs_of_similar_length_and_sees_each_once(data):
    loader = bert.train_loader(data, TINY)
    first, second = list(loader.sampler), list(loader.sampler)
    assert sorted(first) == sorted(second) == list(range(len(data.train_set))) and first != second
    real = padded = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    assert real / padded > 0.9
    assert bert.optimizer_steps(loader, TINY) == TINY.epochs * math.ceil(len(loader) / TINY.grad_accum_steps)


def test_held_out_scores_agree_with_the_model_loss(data):
    model = new_mini_bert(data.tokenizer, TINY).train()
    batch = data.held_out_batches[0]
    scores = held_out_scores(model, [batch])
    assert model.training  # the mode it found is restored
    with torch.no_grad():
        out = model.eval()(**batch)
    assert len(scores["mlm_loss"]) == (batch["labels"] != -100).sum() and len(scores["nsp_loss"]) == len(batch["labels"])
    assert scores["mlm_loss"].mean() + scores["nsp_loss"].mean() == pytest.approx(out.loss.item(), abs=1e-5)


def test_masked_lm_copy_gives_the_same_predictions(data):
    model = new_mini_bert(data.tokenizer, TINY).eval()
    batch = data.held_out_batches[0]
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        assert torch.allclose(as_masked_lm(model)(**inputs).logits, model(**inputs).prediction_logits, atol=1e-5)
    with pytest.raises(TypeError, match="BertForPreTraining"):
        as_masked_lm(torch.nn.Linear(2, 2))


def test_fill_mask_examples_and_hits(data):
    from transformers import pipeline

    sentences = [s for d in data.held_out_corpus.documents for s in d]
    examples = fill_mask_examples(data.tokenizer, sentences, n=20, seed=0)
    assert all(text.count("[MASK]") == 1 and answer.isalpha() for text, answer in examples)
    assert fill_mask_examples(data.tokenizer, sentences, n=20, seed=0) == examples
    model = new_mini_bert(data.tokenizer, TINY)
    with torch.no_grad():  # a model that always predicts the answer of example 0 hits exactly the examples with it
        model.cls.predictions.bias.zero_()
        model.cls.predictions.bias[data.tokenizer.convert_tokens_to_ids(examples[0][1])] = 100.0
    fill = pipeline("fill-mask", model=as_masked_lm(model), tokenizer=data.tokenizer, device=torch.device("cpu"))
    hits = fill_mask_hits(fill, examples, k=1)
    assert hits == [answer == examples[0][1] for _, answer in examples]
    with pytest.raises(ValueError, match="maskable word"):
        fill_mask_examples(data.tokenizer, ["x = 1 + 2", "No."], n=1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda data: fill_mask_examples(data.tokenizer, ["A sentence with words."], n=0), "n must be"),
        (lambda data: fill_mask_hits(lambda *a, **k: [], [("a [MASK] b", "x")], k=0), "k must be"),
        (lambda data: fill_mask_hits(lambda *a, **k: [], [], k=5), "examples is empty"),
        (lambda data: held_out_scores(new_mini_bert(data.tokenizer, TINY), []), "batches is empty"),
        (lambda data: make_optimizer(new_mini_bert(data.tokenizer, TINY), TINY, steps=0), "steps"),
        (lambda data: make_optimizer(new_mini_bert(data.tokenizer, TINY), TINY, steps=2.5), "steps"),
    ],
)
def test_bad_arguments_get_clear_errors(data, call, message):
    with pytest.raises(ValueError, match=message):
        call(data)


# ---------------------------------------------------------------- the checkpoint for chapter 07
def test_checkpoint_is_rebuilt_when_missing_or_corrupt_and_loads_for_chapter_07(monkeypatch, tmp_path, capsys, data):
    from transformers import AutoTokenizer, BertForPreTraining, BertForSequenceClassification

    monkeypatch.setenv("PTCOURSE_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(bert, "pretraining_recipe", lambda: TINY)
    monkeypatch.setattr(bert, "prepare_data", lambda recipe=None, corpora=None: data)
    with pytest.raises(FileNotFoundError, match="run notebooks/06_bert_pretraining.ipynb"):
        mini_bert_checkpoint(rebuild=False)
    path = mini_bert_checkpoint()
    out = capsys.readouterr().out
    assert out.count("[ptcourse]") == 1 and "pretraining it now" in out
    assert path == tmp_path / "ch06_mini_bert_fast" and mini_bert_checkpoint(rebuild=False) == path
    assert "[ptcourse]" not in capsys.readouterr().out
    tokenizer = AutoTokenizer.from_pretrained(path)
    classifier = BertForSequenceClassification.from_pretrained(path, num_labels=2)
    assert len(tokenizer) == classifier.config.vocab_size and tokenizer.model_max_length == TINY.max_len
    enc = tokenizer(["The cat sees the moon today."] * 2, return_tensors="pt", padding=True, truncation=True)
    assert classifier(**enc).logits.shape == (2, 2)
    reference = pretrain(TINY, data, progress=False).model.state_dict()
    saved = BertForPreTraining.from_pretrained(path).state_dict()
    assert all(torch.equal(saved[k], v) for k, v in reference.items())  # the same code path, the same weights

    (path / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(FileNotFoundError):
        mini_bert_checkpoint(rebuild=False)
    assert mini_bert_checkpoint() == path and "pretraining it now" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp-*"))

    changed = dataclasses.replace(TINY, epochs=TINY.epochs + 1)   # the course's recipe changed since
    monkeypatch.setattr(bert, "pretraining_recipe", lambda: changed)
    with pytest.raises(FileNotFoundError, match="another recipe"):
        mini_bert_checkpoint(rebuild=False)
    assert mini_bert_checkpoint() == path and "another recipe" in capsys.readouterr().out
    assert json.loads((path / "ptcourse_pretraining.json").read_text())["recipe"]["epochs"] == changed.epochs
    assert mini_bert_checkpoint(rebuild=False) == path


def test_save_refuses_a_tokenizer_that_does_not_fit(tmp_path, data):
    model = new_mini_bert(list(range(len(data.tokenizer) + 1)), TINY)
    with pytest.raises(ValueError, match="vocab_size"):
        bert.save_mini_bert(model, data.tokenizer, tmp_path / "x")
    assert not (tmp_path / "x").exists()
