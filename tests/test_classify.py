"""Fine-tuning pieces of chapter 07: batches and padding, checks on bad input, loading, training, probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptcourse.classify import (
    MaskedTextBatches,
    TextBatches,
    bert_layers,
    check_labels,
    check_trainable,
    check_vocab,
    domain_adapt,
    fixed_masked_batches,
    graft_encoder,
    masked_lm_loss,
    encode_texts,
    layer_features,
    load_classifier,
    pad_batch,
    padding_fraction,
    predict_logits,
    probe_accuracy,
    train_classifier,
)
from ptcourse.finetune import freeze, layerwise_lr_decay
from ptcourse.sentiment import make_synthetic_sentiment

SENTENCES = make_synthetic_sentiment(200, 40, 40, seed=0)


def make_tokenizer(texts, vocab_size=120):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny BertForPreTraining and its tokenizer, saved the way chapter 06 saves its mini-BERT."""
    from transformers import BertConfig, BertForPreTraining

    path = tmp_path_factory.mktemp("mini_bert")
    tokenizer = make_tokenizer(SENTENCES.train.texts)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    BertForPreTraining(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def loaded(checkpoint):
    torch.manual_seed(0)
    return load_classifier(checkpoint, num_labels=2, classes=["negative", "positive"])


# ------------------------------------------------------------------ tokenising and padding
def test_encode_texts_truncates_and_says_so_once(loaded, capsys):
    _, tokenizer = loaded
    texts = ["the plot was good", "the plot was good and " * 10 + "the end", "the cast was bad " * 8]
    ids = encode_texts(tokenizer, texts, max_length=12)
    assert [len(s) for s in ids][0] < 12 and all(len(s) <= 12 for s in ids)
    assert all(s[0] == tokenizer.cls_token_id and s[-1] == tokenizer.sep_token_id for s in ids)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[ptcourse]")]
    assert len(lines) == 1 and "2 of 3 texts were longer than 12 tokens" in lines[0]
    assert encode_texts(tokenizer, texts[:1], max_length=np.int64(12)) == ids[:1]
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("texts, max_length, error, message", [
    ("one string", 10, TypeError, "list of strings"),
    ([], 10, ValueError, "texts is empty"),
    (["a", None], 10, TypeError, "list of strings"),
    (["a"], 2, ValueError, "max_length must be an int >= 3"),
    (["a"], 10.0, ValueError, "max_length must be an int"),
    (["a"], True, ValueError, "max_length must be an int"),
])
def test_encode_texts_bad_input(loaded, texts, max_length, error, message):
    with pytest.raises(error, match=message):
        encode_texts(loaded[1], texts, max_length=max_length)


def test_pad_batch_matches_the_transformers_collator(loaded):
    from transformers import DataCollatorWithPadding

    _, tokenizer = loaded
    ids = encode_texts(tokenizer, SENTENCES.train.texts[:6], max_length=32)
    ours = pad_batch(ids, tokenizer.pad_token_id, labels=SENTENCES.train.labels[:6])
    theirs = DataCollatorWithPadding(tokenizer)(
        [{"input_ids": s, "labels": int(y)} for s, y in zip(ids, SENTENCES.train.labels[:6])])
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(ours[key], theirs[key]), key
    with pytest.raises(ValueError, match="empty batch"):
        pad_batch([], 0)


def test_text_batches_cover_every_sentence_once_with_its_label():
    ids = [[2] + [7] * (i % 9 + 1) + [3, 100 + i] for i in range(50)]  # the last id names the row
    labels = torch.arange(50) % 2
    for bucket in (False, True):
        torch.manual_seed(0)
        loader = TextBatches(ids, labels, batch_size=8, pad_id=0, shuffle=True, bucket=bucket)
        rows = []
        for batch in loader:
            lengths = batch["attention_mask"].sum(1)
            row = batch["input_ids"][torch.arange(len(lengths)), lengths - 1] - 100
            assert torch.equal(batch["labels"], row % 2)
            assert batch["input_ids"].shape[1] == int(lengths.max())  # padded to its own longest
            rows += row.tolist()
        assert sorted(rows) == list(range(50)) and len(loader) == 7


def test_bucketing_reduces_padding():
    g = torch.Generator().manual_seed(0)
    ids = [[1] * int(n) for n in torch.randint(3, 60, (800,), generator=g)]
    torch.manual_seed(0)
    plain = padding_fraction(TextBatches(ids, None, 32, 0, shuffle=True))
    torch.manual_seed(0)
    bucketed = padding_fraction(TextBatches(ids, None, 32, 0, shuffle=True, bucket=True))
    fixed = 1 - sum(map(len, ids)) / (len(ids) * 60)
    assert bucketed < 0.1 < plain < fixed


def test_epoch_size_repeats_a_small_training_set_to_exactly_that_size():
    ids = [[i + 1] * (1 + i % 3) for i in range(10)]
    torch.manual_seed(0)
    loader = TextBatches(ids, [0, 1] * 5, batch_size=4, pad_id=0, shuffle=True, epoch_size=35)
    batches = list(loader)
    assert len(loader) == len(batches) == 9 and sum(len(b["labels"]) for b in batches) == 35
    seen = torch.cat([b["input_ids"][:, 0] for b in batches]).tolist()
    counts = [seen.count(i + 1) for i in range(10)]
    assert sorted(counts) == [3] * 5 + [4] * 5  # three whole repeats, then 5 of a fourth: no sentence favoured
    assert len(TextBatches(ids, None, 4, 0, epoch_size=6)) == 3  # a set larger than epoch_size is used whole
    assert len(TextBatches(ids, None, 4, 0, epoch_size=np.int64(12))) == 3


@pytest.mark.parametrize("name", ["epoch_size", "window"])
@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_epoch_size_and_window_must_be_positive_ints(name, bad, error):
    with pytest.raises(error, match=f"{name} must be"):
        TextBatches([[1]], None, 4, 0, **{name: bad})


def test_a_smaller_bucketing_window_pads_more_and_sorts_only_within_each_window():
    ids = [[1] * (1 + (7 * i) % 40) for i in range(400)]
    padding = {}
    for window in (1, 2, 50):
        torch.manual_seed(0)
        loader = TextBatches(ids, None, 8, 0, shuffle=True, bucket=True, window=window)
        padding[window] = padding_fraction(loader)
        assert sorted(i for batch in loader._order() for i in batch) == list(range(400))
    torch.manual_seed(0)
    unsorted = padding_fraction(TextBatches(ids, None, 8, 0, shuffle=True))
    assert padding[1] == pytest.approx(unsorted) and unsorted > padding[2] > padding[50]


@pytest.mark.parametrize("args, error, message", [
    (([], None, 4, 0), ValueError, "non-empty list"),
    (([[1]], [0, 1], 4, 0), ValueError, "1 sentences but 2 labels"),
    (([[1]], None, 0, 0), ValueError, "batch_size must be >= 1"),
    (([[1]], None, 2.0, 0), TypeError, "batch_size must be a positive int"),
])
def test_text_batches_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        TextBatches(*args)


def test_masked_batches_never_mask_padding(loaded):
    from transformers import DataCollatorForLanguageModeling

    _, tokenizer = loaded
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.5, seed=0)

    def mask_fn(input_ids, tok, mlm_probability):  # a stand-in for ptcourse.text.mask_tokens
        out = collator.torch_mask_tokens(input_ids.clone())
        return out

    ids = encode_texts(tokenizer, SENTENCES.train.texts[:64], max_length=32)
    for batch in MaskedTextBatches(ids, tokenizer, batch_size=16, mask_fn=mask_fn, mlm_probability=0.5):
        pad = batch["attention_mask"] == 0
        assert (batch["input_ids"][pad] == tokenizer.pad_token_id).all()
        assert (batch["labels"][pad] == -100).all()
        assert (batch["labels"] != -100).any()


# ------------------------------------------------------------------ checks on bad input
def test_check_vocab_catches_a_tokenizer_from_another_checkpoint(loaded, checkpoint, tmp_path):
    model, tokenizer = loaded
    check_vocab(model, tokenizer)
    other = make_tokenizer(SENTENCES.train.texts, vocab_size=90)
    with pytest.raises(ValueError, match=f"the tokenizer has {len(other)} tokens but the model's embedding has"):
        check_vocab(model, other)
    # a checkpoint directory whose tokenizer does not belong to its model
    import shutil

    shutil.copytree(checkpoint, tmp_path / "mixed")
    other.save_pretrained(tmp_path / "mixed")
    with pytest.raises(ValueError, match="different checkpoints"):
        load_classifier(tmp_path / "mixed")


def test_check_labels(loaded):
    model, _ = loaded
    check_labels(model, torch.tensor([0, 1, 1]))
    check_labels(model, np.array([0, 1], dtype=np.int64))
    with pytest.raises(ValueError, match="labels run from 0 to 2 but the classification head has num_labels=2"):
        check_labels(model, [0, 1, 2])
    with pytest.raises(ValueError, match="num_labels=2"):
        check_labels(model, [-1, 0])
    with pytest.raises(TypeError, match="integer class ids"):
        check_labels(model, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="no labels"):
        check_labels(model, torch.tensor([], dtype=torch.long))


def test_a_head_with_the_wrong_number_of_labels_is_refused_before_training(loaded):
    model, tokenizer = loaded
    ids = encode_texts(tokenizer, ["a", "b", "c"], max_length=8)
    three_classes = TextBatches(ids, [0, 1, 2], batch_size=2, pad_id=0)
    with pytest.raises(ValueError, match="load the model with num_labels=3"):
        train_classifier(model, three_classes, three_classes, lr=1e-3, epochs=1)


def test_a_fully_frozen_model_has_nothing_to_train(loaded):
    model, tokenizer = loaded
    check_trainable(model)
    freeze(model)
    with pytest.raises(ValueError, match="nothing left to train"):
        check_trainable(model)
    ids = encode_texts(tokenizer, ["a", "b"], max_length=8)
    batches = TextBatches(ids, [0, 1], batch_size=2, pad_id=0)
    with pytest.raises(ValueError, match="nothing left to train"):
        train_classifier(model, batches, batches, lr=1e-3, epochs=1)


# ------------------------------------------------------------------ loading
def test_load_classifier_pretrained_and_random(checkpoint):
    from transformers import BertForPreTraining

    source = BertForPreTraining.from_pretrained(checkpoint)
    model, tokenizer = load_classifier(checkpoint, num_labels=2, classes=["negative", "positive"])
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight,
                       source.bert.encoder.layer[0].attention.self.query.weight)
    assert torch.equal(model.bert.pooler.dense.weight, source.bert.pooler.dense.weight)
    assert model.config.id2label == {0: "negative", 1: "positive"} and model.config._attn_implementation == "sdpa"
    random_model, _ = load_classifier(checkpoint, num_labels=2, pretrained=False)
    assert random_model.config.hidden_size == model.config.hidden_size
    assert sum(p.numel() for p in random_model.parameters()) == sum(p.numel() for p in model.parameters())
    assert not torch.equal(random_model.bert.encoder.layer[0].attention.self.query.weight,
                           model.bert.encoder.layer[0].attention.self.query.weight)
    three, _ = load_classifier(checkpoint, num_labels=3)
    assert three.classifier.out_features == 3 and three.config.id2label == {0: "0", 1: "1", 2: "2"}


def test_load_classifier_offline_hub_id_is_skipped_in_one_line(capsys):
    assert load_classifier("google/bert_uncased_L-4_H-256_A-4") is None
    assert "[ptcourse]" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_labels": 1}, ValueError, "num_labels must be an int >= 2"),
    ({"num_labels": 2.0}, ValueError, "num_labels must be an int >= 2"),
    ({"num_labels": 2, "classes": ["a", "b", "c"]}, ValueError, "3 class names for num_labels=2"),
])
def test_load_classifier_bad_input(checkpoint, kwargs, error, message):
    with pytest.raises(error, match=message):
        load_classifier(checkpoint, **kwargs)


def test_load_classifier_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        load_classifier(tmp_path / "nowhere")


def test_bert_layers_cover_every_parameter_once(loaded):
    model, _ = loaded
    layers = bert_layers(model)
    assert len(layers) == model.config.num_hidden_layers + 2
    groups = layerwise_lr_decay(layers, base_lr=1e-3, decay=0.5, model=model)  # raises if one is missing
    n_layers = len(layers)
    by_name = {g["name"]: g["lr"] for g in groups}
    for depth in range(n_layers):
        assert by_name[f"layer {depth}"] == pytest.approx(1e-3 * 0.5 ** (n_layers - 1 - depth))


# ------------------------------------------------------------------ training, predictions, features
def batches(tokenizer, part, shuffle=False, batch_size=16):
    return TextBatches(encode_texts(tokenizer, part.texts, 32), part.labels, batch_size, tokenizer.pad_token_id,
                       shuffle=shuffle)


def test_train_classifier_learns_and_logs_a_regulariser(loaded):
    from ptcourse.finetune import L2SP

    from ptcourse.sentiment import ASPECTS, NEGATIVE, POSITIVE, TextSet

    model, tokenizer = loaded
    easy = [(f"the {a} was {w}", int(w in POSITIVE)) for a in ASPECTS for w in POSITIVE + NEGATIVE]
    easy = TextSet([t for t, _ in easy], [y for _, y in easy], "easy", ["negative", "positive"])
    train, val = batches(tokenizer, easy, shuffle=True), batches(tokenizer, easy.subset(range(0, 384, 8)))
    reg = L2SP(model, alpha=1e-4, new="classifier")
    assert reg().item() == 0.0
    history = train_classifier(model, train, val, lr=1e-2, epochs=6, regulariser=reg, device="cpu", amp=False)
    assert {"train_ce", "train_reg", "val_acc"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < 0.6 < history["train_loss"].iloc[0]
    assert history["val_acc"].max() > 0.7 and reg.distance() > 0


def test_train_classifier_ends_at_its_best_validation_epoch(loaded):
    """The returned model has the weights of the epoch with the best validation accuracy, not the last."""
    from ptcourse.sentiment import ASPECTS, NEGATIVE, POSITIVE, TextSet
    from ptcourse.training import accuracy, evaluate

    model, tokenizer = loaded
    easy = [(f"the {a} was {w}", int(w in POSITIVE)) for a in ASPECTS for w in POSITIVE + NEGATIVE]
    easy = TextSet([t for t, _ in easy], [y for _, y in easy], "easy", ["negative", "positive"])
    flipped = TextSet(easy.texts, 1 - easy.labels, "flipped", easy.classes)  # learning the task makes it worse
    train, val = batches(tokenizer, easy, shuffle=True), batches(tokenizer, flipped.subset(range(0, 384, 8)))
    torch.manual_seed(0)  # the shuffling too: the same run whatever ran before
    history = train_classifier(model, train, val, lr=1e-3, epochs=4, device="cpu", amp=False)
    assert history["val_acc"].iloc[-1] < history["val_acc"].max()  # here the last epoch is not the best
    assert evaluate(model, val, metrics={"acc": accuracy})["acc"] == pytest.approx(history["val_acc"].max())


def test_train_classifier_bad_input(loaded):
    model, tokenizer = loaded
    b = batches(tokenizer, SENTENCES.val)
    with pytest.raises(ValueError, match="schedule must be"):
        train_classifier(model, b, b, lr=1e-3, epochs=1, schedule="cosine")
    with pytest.raises(ValueError, match="warmup is a fraction"):
        train_classifier(model, b, b, lr=1e-3, epochs=1, warmup=1.5)


def test_predictions_and_features(loaded):
    model, tokenizer = loaded
    part = SENTENCES.val
    model.train()
    logits = predict_logits(model, batches(tokenizer, part))
    assert logits.shape == (len(part), 2) and model.training  # mode restored
    feats = layer_features(model, batches(tokenizer, part))
    assert len(feats) == model.config.num_hidden_layers + 1
    assert all(f.shape == (len(part), model.config.hidden_size) for f in feats)
    # mean pooling ignores padding: a sentence gives the same features alone or padded in a batch
    alone = layer_features(model, batches(tokenizer, part.subset([0]), batch_size=1))
    for f_batch, f_alone in zip(feats, alone):
        torch.testing.assert_close(f_batch[0], f_alone[0], atol=1e-5, rtol=1e-4)
    cls = layer_features(model, batches(tokenizer, part), pooling="cls")
    assert not torch.allclose(cls[-1], feats[-1])
    with pytest.raises(ValueError, match="pooling must be"):
        layer_features(model, batches(tokenizer, part), pooling="max")


def test_probe_accuracy_reads_a_linear_signal():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 5, generator=g)
    x[:, 2] += 6 * y
    assert probe_accuracy(x[:100], y[:100], x[100:], y[100:]) > 0.95
    assert probe_accuracy(x[:100, :2], y[:100], x[100:, :2], y[100:]) < 0.75


def test_domain_adapt_trains_the_encoder_and_keeps_the_pooler(checkpoint, loaded, tmp_path):
    from transformers import BertForPreTraining, DataCollatorForLanguageModeling

    _, tokenizer = loaded
    collator = DataCollatorForLanguageModeling(tokenizer, seed=0)
    ids = encode_texts(tokenizer, SENTENCES.train.texts, max_length=32)
    history = domain_adapt(checkpoint, ids, tokenizer, tmp_path / "dapt", epochs=2, lr=3e-3, batch_size=32,
                           mask_fn=lambda x, tok, mlm_probability: collator.torch_mask_tokens(x.clone()),
                           device="cpu")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    before = BertForPreTraining.from_pretrained(checkpoint)
    after = BertForPreTraining.from_pretrained(tmp_path / "dapt")
    assert torch.equal(before.bert.pooler.dense.weight, after.bert.pooler.dense.weight)
    assert not torch.equal(before.bert.encoder.layer[0].output.dense.weight, after.bert.encoder.layer[0].output.dense.weight)
    model, _ = load_classifier(tmp_path / "dapt")
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, after.bert.embeddings.word_embeddings.weight)


# ------------------------------------------------------------------ forgetting: fixed masks, MLM loss, grafting
def test_fixed_masks_are_the_same_every_time_and_the_loss_sees_the_encoder(checkpoint, loaded):
    from transformers import BertForPreTraining

    model, tokenizer = loaded
    ids = encode_texts(tokenizer, SENTENCES.val.texts, max_length=32)
    first, second = fixed_masked_batches(ids, tokenizer, seed=0), fixed_masked_batches(ids, tokenizer, seed=0)
    assert all(torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
               for a, b in zip(first, second))
    assert any(not torch.equal(a["labels"], b["labels"])
               for a, b in zip(first, fixed_masked_batches(ids, tokenizer, seed=1)))
    pretrained = BertForPreTraining.from_pretrained(checkpoint)
    loss = masked_lm_loss(pretrained, first)
    # the same number by hand: the cross-entropy summed over masked tokens, divided by their count
    total = count = 0
    with torch.no_grad():
        for batch in first:
            logits = pretrained(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).prediction_logits
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1),
                                                       ignore_index=-100, reduction="sum").item()
            count += int((batch["labels"] != -100).sum())
    assert loss == pytest.approx(total / count, rel=1e-5)
    with pytest.raises(ValueError, match="no masked token"):
        masked_lm_loss(pretrained, [{**first[0], "labels": torch.full_like(first[0]["labels"], -100)}])

    with torch.no_grad():
        model.bert.encoder.layer[0].attention.self.value.weight.add_(1.0)  # "fine-tuning" moved the encoder
    grafted = graft_encoder(pretrained, model)
    for name, value in grafted.bert.state_dict().items():
        source = model.bert if not name.startswith("pooler.") else pretrained.bert
        assert torch.equal(value, source.state_dict()[name]), name
    assert torch.equal(grafted.cls.predictions.transform.dense.weight, pretrained.cls.predictions.transform.dense.weight)
    assert not torch.equal(pretrained.bert.encoder.layer[0].attention.self.value.weight,
                           grafted.bert.encoder.layer[0].attention.self.value.weight)  # the original is untouched


def test_graft_refuses_a_different_encoder(checkpoint):
    from transformers import BertConfig, BertForPreTraining, BertForSequenceClassification

    pretrained = BertForPreTraining.from_pretrained(checkpoint)
    other = BertForSequenceClassification(BertConfig(vocab_size=pretrained.config.vocab_size, hidden_size=16,
                                                     num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=32, max_position_embeddings=32))
    with pytest.raises(ValueError, match="do not match"):
        graft_encoder(pretrained, other)


@pytest.mark.parametrize("dropout", [1.0, -0.1, "0.1", True])
def test_load_classifier_bad_dropout(checkpoint, dropout):
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        load_classifier(checkpoint, dropout=dropout)


def test_load_classifier_dropout_override(checkpoint):
    model, _ = load_classifier(checkpoint, dropout=0.0)
    assert model.config.hidden_dropout_prob == 0.0 and model.config.attention_probs_dropout_prob == 0.0
