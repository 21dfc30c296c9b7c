"""A mini-BERT pretrained with MLM + NSP, and the checkpoint chapter 07 fine-tunes.

Usage::

    from ptcourse.bert import pretraining_recipe, prepare_data, pretrain, mini_bert_checkpoint
    run = pretrain()                       # the profile's recipe: corpus, tokenizer, BertForPreTraining, fit
    run.history[["epoch", "val_mlm_loss", "val_mlm_acc", "val_nsp_acc"]]

    path = mini_bert_checkpoint()          # chapter 07: the saved model (made if missing)
    model = BertForSequenceClassification.from_pretrained(path, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(path)

Introduced in chapter 06 (``notebooks/06_bert_pretraining.ipynb`` shows every step
inline first); chapter 07 calls :func:`mini_bert_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ptcourse.profiles import by_profile, profile
from ptcourse.text import (
    Corpus,
    _check_count,
    PretrainingCollator,
    PretrainingDataset,
    load_corpus,
    make_nsp_pairs,
    train_wordpiece,
)

__all__ = [
    "PretrainingRecipe", "pretraining_recipe", "PretrainingData", "prepare_data", "mini_bert_config",
    "new_mini_bert", "check_compatible", "pretraining_losses", "mlm_accuracy", "nsp_accuracy", "METRICS",
    "make_optimizer", "train_loader", "optimizer_steps", "pretrain", "PretrainingRun", "held_out_scores", "as_masked_lm",
    "fill_mask_examples", "fill_mask_hits", "save_mini_bert", "checkpoint_path", "mini_bert_checkpoint",
]

_MARKER = "ptcourse_pretraining.json"  # written last: its presence means the checkpoint is complete


# ---------------------------------------------------------------- the recipe of each profile
@dataclass(frozen=True)
class PretrainingRecipe:
    """Every size and hyper-parameter of one pretraining run (see :func:`pretraining_recipe`) (chapter 06).

    Usage: ``dataclasses.replace(pretraining_recipe(), epochs=1)``
    """

    vocab_size: int          # WordPiece vocabulary, special tokens included
    max_len: int             # tokens per pair, [CLS] and both [SEP] included
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_documents: int | None  # training documents used (None: all)
    n_pairs: int             # training sentence pairs
    n_held_out_pairs: int    # pairs from the held-out documents
    epochs: int
    batch_size: int          # pairs per micro-batch
    grad_accum_steps: int    # micro-batches per optimizer step
    lr: float                # peak learning rate (after warm-up)
    warmup_fraction: float   # share of the optimizer steps spent warming up
    dropout: float = 0.1     # BERT's dropout on hidden states and attention weights
    weight_decay: float = 0.01
    nsp_weight: float = 1.0  # loss = L_MLM + nsp_weight * L_NSP (0: MLM only)
    mlm_probability: float = 0.15
    seed: int = 0


def pretraining_recipe() -> PretrainingRecipe:
    """The recipe of the profile in force (fast: seconds on a CPU; standard: minutes; full: one GPU) (chapter 06).

    Usage: ``recipe = pretraining_recipe(); dataclasses.replace(recipe, epochs=1)``
    """
    return by_profile(
        fast=PretrainingRecipe(vocab_size=2000, max_len=64, hidden_size=64, num_layers=2, num_heads=2,
                               intermediate_size=256, max_documents=None, n_pairs=3200, n_held_out_pairs=512,
                               epochs=3, batch_size=8, grad_accum_steps=1, lr=2e-3, warmup_fraction=0.06,
                               dropout=0.0),
        standard=PretrainingRecipe(vocab_size=4000, max_len=128, hidden_size=128, num_layers=4, num_heads=2,
                                   intermediate_size=512, max_documents=None, n_pairs=12000,
                                   n_held_out_pairs=800, epochs=8, batch_size=16, grad_accum_steps=1,
                                   lr=1e-3, warmup_fraction=0.06, dropout=0.0),
        full=PretrainingRecipe(vocab_size=16000, max_len=128, hidden_size=256, num_layers=4, num_heads=4,
                               intermediate_size=1024, max_documents=10_000, n_pairs=500_000,
                               n_held_out_pairs=5000, epochs=2, batch_size=128, grad_accum_steps=2,
                               lr=5e-4, warmup_fraction=0.05),
    )


# ---------------------------------------------------------------- data
@dataclass
class PretrainingData:
    """The corpus, the tokenizer trained on it, training pairs and fixed held-out batches (chapter 06).

    Usage: ``data = prepare_data(recipe); data.tokenizer, data.train_set``
    """

    train_corpus: Corpus
    held_out_corpus: Corpus
    tokenizer: Any
    train_set: PretrainingDataset
    held_out_set: PretrainingDataset
    held_out_batches: list[dict[str, torch.Tensor]]  # masked once (seed fixed): comparable across epochs


def prepare_data(recipe: PretrainingRecipe | None = None,
                 corpora: tuple[Corpus, Corpus] | None = None) -> PretrainingData:
    """Load the corpus, train the WordPiece tokenizer, build the NSP pairs and the held-out batches (chapter 06).

    ``corpora`` = (training corpus, held-out corpus) replaces :func:`ptcourse.text.load_corpus`.

    Usage: ``data = prepare_data(pretraining_recipe())``
    """
    recipe = recipe or pretraining_recipe()
    if corpora is None:
        corpora = load_corpus(max_documents=recipe.max_documents, seed=recipe.seed)
    train_corpus, held_out_corpus = corpora
    tokenizer = train_wordpiece(train_corpus.texts(), vocab_size=recipe.vocab_size, model_max_length=recipe.max_len)
    train_pairs = make_nsp_pairs(train_corpus.documents, recipe.n_pairs, seed=recipe.seed)
    held_pairs = make_nsp_pairs(held_out_corpus.documents, recipe.n_held_out_pairs, seed=recipe.seed + 1)
    train_set = PretrainingDataset(train_pairs, tokenizer, recipe.max_len)
    held_out_set = PretrainingDataset(held_pairs, tokenizer, recipe.max_len)
    collate = PretrainingCollator(tokenizer, recipe.mlm_probability, seed=recipe.seed + 1)
    by_length = sorted(range(len(held_out_set)), key=held_out_set.lengths().__getitem__)  # little padding
    batches = list(DataLoader(held_out_set, batch_size=4 * recipe.batch_size, sampler=by_length, collate_fn=collate))
    return PretrainingData(train_corpus, held_out_corpus, tokenizer, train_set, held_out_set, batches)


# ---------------------------------------------------------------- model
def mini_bert_config(vocab_size: int, recipe: PretrainingRecipe | None = None):
    """A ``BertConfig`` with the recipe's sizes and PyTorch's fused attention (SDPA) (chapter 06).

    Usage: ``config = mini_bert_config(len(tokenizer))``
    """
    from transformers import BertConfig

    recipe = recipe or pretraining_recipe()
    return BertConfig(vocab_size=vocab_size, hidden_size=recipe.hidden_size, num_hidden_layers=recipe.num_layers,
                      num_attention_heads=recipe.num_heads, intermediate_size=recipe.intermediate_size,
                      max_position_embeddings=recipe.max_len, type_vocab_size=2, pad_token_id=0,
                      hidden_dropout_prob=recipe.dropout, attention_probs_dropout_prob=recipe.dropout,
                      attn_implementation="sdpa")


def new_mini_bert(tokenizer: Any, recipe: PretrainingRecipe | None = None):
    """A freshly initialised ``BertForPreTraining`` sized for ``tokenizer`` (seeded with ``recipe.seed``) (chapter 06).

    Usage: ``model = new_mini_bert(tokenizer)``
    """
    from transformers import BertForPreTraining

    from ptcourse.repro import seed_everything

    recipe = recipe or pretraining_recipe()
    seed_everything(recipe.seed)
    return BertForPreTraining(mini_bert_config(len(tokenizer), recipe))


def check_compatible(model: Any, tokenizer: Any, max_len: int | None = None) -> None:
    """Raise ``ValueError`` if ``tokenizer`` and ``model`` do not fit together (chapter 06).

    The tokenizer's vocabulary must have exactly ``config.vocab_size`` entries, and
    sequences of ``max_len`` tokens must fit ``config.max_position_embeddings``.

    Usage: ``check_compatible(model, tokenizer, max_len=128)``
    """
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "vocab_size"):
        raise TypeError(f"model must be a Hugging Face BERT model with a config, got {type(model).__name__}")
    if len(tokenizer) != config.vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: "
            "build the model from this tokenizer (vocab_size=len(tokenizer)) or load the tokenizer it was trained with"
        )
    if max_len is not None and max_len > config.max_position_embeddings:
        raise ValueError(
            f"sequences of {max_len} tokens are longer than the model's max_position_embeddings="
            f"{config.max_position_embeddings}: truncate to at most that many tokens"
        )


# ---------------------------------------------------------------- losses and metrics
def pretraining_losses(outputs: Any, batch: dict[str, torch.Tensor], nsp_weight: float = 1.0) -> dict[str, Any]:
    """``{"loss": L_MLM + nsp_weight * L_NSP, "mlm_loss": L_MLM, "nsp_loss": L_NSP}`` for ``ptcourse.fit`` (chapter 06).

    ``outputs.loss`` of ``BertForPreTraining`` is L_MLM + L_NSP; L_NSP (2 logits per pair) is
    recomputed here and subtracted, which avoids a second cross-entropy over the vocabulary.

    Usage: ``fit(model, loader, loss_fn=pretraining_losses, ...)``
    """
    if outputs.loss is None:
        raise ValueError("the model returned no loss: the batch needs both labels and next_sentence_label")
    nsp = F.cross_entropy(outputs.seq_relationship_logits.float(), batch["next_sentence_label"])
    mlm = outputs.loss - nsp
    return {"loss": mlm + nsp_weight * nsp, "mlm_loss": mlm, "nsp_loss": nsp}


def mlm_accuracy(outputs: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Share of the masked positions (labels != -100) whose arg-max prediction is the original token (chapter 06).

    Usage: ``fit(..., metrics={"mlm_acc": mlm_accuracy})``
    """
    labels = batch["labels"]
    chosen = labels != -100
    return (outputs.prediction_logits.argmax(-1)[chosen] == labels[chosen]).float().mean()


def nsp_accuracy(outputs: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Share of pairs whose IsNext (0) / random (1) prediction is right (chapter 06).

    Usage: ``fit(..., metrics={"nsp_acc": nsp_accuracy})``
    """
    return (outputs.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).float().mean()


METRICS = {"mlm_acc": mlm_accuracy, "nsp_acc": nsp_accuracy}


# ---------------------------------------------------------------- optimizer and loader
def make_optimizer(model: Any, recipe: PretrainingRecipe, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (no decay on biases and LayerNorm weights) and a linear warm-up-then-decay schedule (chapter 06).

    ``steps`` is the number of optimizer steps of the whole run.

    Usage: ``optimizer, scheduler = make_optimizer(model, recipe, steps=epochs * len(loader) // accum)``
    """
    from transformers import get_linear_schedule_with_warmup

    from ptcourse.finetune import param_groups

    steps = _check_count(steps, "steps (optimizer steps of the run)")
    groups = param_groups(model, {}, default_lr=recipe.lr, weight_decay=recipe.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=recipe.lr)
    warmup = max(1, round(recipe.warmup_fraction * steps))
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, max(steps, warmup + 1))


def train_loader(data: PretrainingData, recipe: PretrainingRecipe) -> DataLoader:
    """Shuffled batches of pairs of similar length, masked afresh each time (dynamic masking) (chapter 06).

    ``LengthGroupedSampler`` (what ``Trainer(group_by_length=True)`` uses) shuffles the pairs,
    then sorts groups of 50 batches by length, so a batch wastes little compute on padding.
    The shuffling is seeded by the recipe.

    Usage: ``loader = train_loader(data, recipe)``
    """
    from transformers.trainer_pt_utils import LengthGroupedSampler

    collate = PretrainingCollator(data.tokenizer, recipe.mlm_probability)
    sampler = LengthGroupedSampler(recipe.batch_size, lengths=data.train_set.lengths(),
                                   generator=torch.Generator().manual_seed(recipe.seed))
    workers = 2 if torch.cuda.is_available() else 0
    return DataLoader(data.train_set, batch_size=recipe.batch_size, sampler=sampler, collate_fn=collate,
                      num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)


def optimizer_steps(loader: DataLoader, recipe: PretrainingRecipe) -> int:
    """Optimizer steps of the run: ceil(batches / grad_accum_steps) per epoch (chapter 06).

    Usage: ``steps = optimizer_steps(loader, recipe)``
    """
    return recipe.epochs * math.ceil(len(loader) / recipe.grad_accum_steps)


# ---------------------------------------------------------------- the run
@dataclass
class PretrainingRun:
    """What :func:`pretrain` returns: the trained model, its tokenizer, the history, the data and the time (chapter 06).

    Usage: ``run = pretrain(); run.model, run.history``
    """

    model: Any
    tokenizer: Any
    history: Any
    data: PretrainingData
    recipe: PretrainingRecipe
    seconds: float


def pretrain(recipe: PretrainingRecipe | None = None, data: PretrainingData | None = None,
             progress: bool = True) -> PretrainingRun:
    """Pretrain a mini-BERT with MLM + NSP: the run of chapter 06, as one function.

    Usage: ``run = pretrain(); run.model.save_pretrained(path)``
    """
    from ptcourse.training import fit

    recipe = recipe or pretraining_recipe()
    data = data or prepare_data(recipe)
    model = new_mini_bert(data.tokenizer, recipe)
    check_compatible(model, data.tokenizer, recipe.max_len)
    loader = train_loader(data, recipe)
    optimizer, scheduler = make_optimizer(model, recipe, optimizer_steps(loader, recipe))
    start = time.perf_counter()
    history = fit(model, loader, epochs=recipe.epochs, optimizer=optimizer, scheduler=scheduler,
                  loss_fn=lambda out, batch: pretraining_losses(out, batch, recipe.nsp_weight),
                  val_loader=data.held_out_batches, metrics=METRICS, grad_accum_steps=recipe.grad_accum_steps,
                  max_grad_norm=1.0, amp="auto", progress=progress)
    return PretrainingRun(model, data.tokenizer, history, data, recipe, time.perf_counter() - start)


@torch.no_grad()
def held_out_scores(model: Any, batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-token and per-pair results on fixed held-out batches (on the CPU, float32) (chapter 06).

    Returns ``mlm_loss`` and ``mlm_correct`` (one entry per masked token), ``targets``
    (their original ids), ``nsp_loss`` and ``nsp_correct`` (one entry per pair).

    Usage: ``scores = held_out_scores(model, data.held_out_batches); scores["mlm_loss"].mean()``
    """
    if not batches:
        raise ValueError("batches is empty: pass the held-out batches (a list of dict batches)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("mlm_loss", "mlm_correct", "targets", "nsp_loss",
                                                             "nsp_correct")}
    try:
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            out = model(**batch)
            chosen = batch["labels"] != -100
            logits, targets = out.prediction_logits[chosen].float(), batch["labels"][chosen]
            nsp_logits, nsp_labels = out.seq_relationship_logits.float(), batch["next_sentence_label"]
            parts["mlm_loss"].append(F.cross_entropy(logits, targets, reduction="none").cpu())
            parts["mlm_correct"].append((logits.argmax(-1) == targets).cpu())
            parts["targets"].append(targets.cpu())
            parts["nsp_loss"].append(F.cross_entropy(nsp_logits, nsp_labels, reduction="none").cpu())
            parts["nsp_correct"].append((nsp_logits.argmax(-1) == nsp_labels).cpu())
    finally:
        model.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}


# ---------------------------------------------------------------- fill-mask
def as_masked_lm(model: Any):
    """A ``BertForMaskedLM`` with the encoder and MLM head of a ``BertForPreTraining`` (weights copied) (chapter 06).

    ``pipeline("fill-mask")`` needs a masked-LM model; the NSP head and the pooler are left out.

    Usage: ``fill = pipeline("fill-mask", model=as_masked_lm(model), tokenizer=tokenizer)``
    """
    from transformers import BertForMaskedLM

    if not hasattr(model, "bert") or not hasattr(getattr(model, "cls", None), "predictions"):
        raise TypeError(f"model must be a BertForPreTraining (or BertForMaskedLM), got {type(model).__name__}")
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.architectures = ["BertForMaskedLM"]
    masked_lm = BertForMaskedLM(config)
    encoder = {k: v for k, v in model.bert.state_dict().items() if not k.startswith("pooler.")}
    masked_lm.bert.load_state_dict(encoder)
    masked_lm.cls.predictions.load_state_dict(model.cls.predictions.state_dict())
    return masked_lm.to(next(model.parameters()).device).eval()


def fill_mask_examples(tokenizer: Any, sentences: list[str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` held-out sentences with one whole word replaced by ``[MASK]``: ``(masked text, answer)`` (chapter 06).

    The masked word is alphabetic, at least 3 letters, and a single token of the tokenizer
    (so that one ``[MASK]`` stands for it); sentences longer than the tokenizer's
    ``model_max_length`` tokens are skipped.

    Usage: ``examples = fill_mask_examples(tokenizer, held_out_sentences, n=300)``
    """
    n = _check_count(n, "n")
    rng = random.Random(seed)
    vocab = tokenizer.get_vocab()
    examples = []
    for sentence in rng.sample(sentences, len(sentences)):
        words = sentence.split()
        limit = tokenizer.model_max_length
        if len(tokenizer(sentence, truncation=True, max_length=limit + 1)["input_ids"]) > limit:
            continue  # too long for the model
        candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 3 and w.lower() in vocab]
        if candidates:
            i = rng.choice(candidates)
            examples.append((" ".join(words[:i] + [tokenizer.mask_token] + words[i + 1:]), words[i].lower()))
        if len(examples) == n:
            return examples
    raise ValueError(f"only {len(examples)} of the {len(sentences)} sentences have a maskable word; asked for {n}")


def fill_mask_hits(fill_mask: Any, examples: list[tuple[str, str]], k: int = 5) -> list[bool]:
    """For each ``(masked text, answer)``: is the answer among the pipeline's top-``k`` predictions? (chapter 06)

    Usage: ``hits = fill_mask_hits(pipeline("fill-mask", model=..., tokenizer=...), examples, k=5)``
    """
    k = _check_count(k, "k")
    if not examples:
        raise ValueError("examples is empty: make them with fill_mask_examples")
    predictions = fill_mask([text for text, _ in examples], top_k=k, batch_size=64)
    return [answer in {p["token_str"].strip() for p in preds} for preds, (_, answer) in zip(predictions, examples)]


# ---------------------------------------------------------------- the checkpoint for chapter 07
def checkpoint_path() -> Path:
    """``checkpoint_dir()/ch06_mini_bert_<profile>``: where the profile's mini-BERT is saved (chapter 06).

    Usage: ``path = checkpoint_path()``
    """
    from ptcourse.paths import checkpoint_dir

    return checkpoint_dir() / f"ch06_mini_bert_{profile()}"


def save_mini_bert(model: Any, tokenizer: Any, path: Path | str | None = None, info: dict | None = None) -> Path:
    """Save model and tokenizer with ``save_pretrained`` (atomically: a complete directory or none) (chapter 06).

    Usage: ``save_mini_bert(run.model, run.tokenizer)  # -> checkpoint_path()``
    """
    check_compatible(model, tokenizer)
    path = Path(path) if path is not None else checkpoint_path()
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    marker = {"profile": profile(), "saved": time.strftime("%Y-%m-%d %H:%M:%S"), **(info or {})}
    (tmp / _MARKER).write_text(json.dumps(marker, indent=1, default=str))
    shutil.rmtree(path, ignore_errors=True)
    tmp.replace(path)
    return path


def _is_complete(path: Path) -> bool:
    """True if ``path`` holds a readable config, weights, tokenizer and the completion marker."""
    from transformers import AutoConfig

    try:
        json.loads((path / _MARKER).read_text())
        json.loads((path / "tokenizer.json").read_text())
        config = AutoConfig.from_pretrained(path)
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), framework="pt") as weights:
            shape = weights.get_slice("bert.embeddings.word_embeddings.weight").get_shape()
        return shape[0] == config.vocab_size
    except Exception:  # noqa: BLE001 - any missing or unreadable part means "incomplete"
        return False


def _saved_recipe(path: Path) -> dict | None:
    """The recipe recorded in a saved checkpoint's marker (None when it records none)."""
    return json.loads((path / _MARKER).read_text()).get("recipe")


def mini_bert_checkpoint(rebuild: bool = True) -> Path:
    """The directory of chapter 06's pretrained mini-BERT and its tokenizer, for the profile in force.

    If it is missing, incomplete, or was pretrained with another recipe than the profile's
    current one (an older version of the course), and ``rebuild`` is true, it is made again by
    running :func:`pretrain` (chapter 06's recipe and seed) and saved; otherwise ``FileNotFoundError``.

    Usage: ``path = mini_bert_checkpoint(); BertForSequenceClassification.from_pretrained(path, num_labels=2)``
    """
    path = checkpoint_path()
    complete = _is_complete(path)
    current = json.loads(json.dumps(dataclasses.asdict(pretraining_recipe())))  # as the marker stores it
    if complete and _saved_recipe(path) in (None, current):
        return path
    problem = "was pretrained with another recipe" if complete else "is missing or incomplete"
    if not rebuild:
        raise FileNotFoundError(
            f"the mini-BERT checkpoint for profile {profile()!r} in {path} {problem}: run "
            "notebooks/06_bert_pretraining.ipynb, or call ptcourse.bert.mini_bert_checkpoint(rebuild=True)"
        )
    from ptcourse.hub import notice

    notice(f"the mini-BERT checkpoint for profile {profile()!r} in {path} {problem}: pretraining it now "
           "with chapter 06's recipe (ptcourse.bert.pretrain).")
    run = pretrain(progress=False)
    return save_mini_bert(run.model, run.tokenizer, path,
                          info={"recipe": dataclasses.asdict(run.recipe), "seconds": run.seconds,
                                "corpus": run.data.train_corpus.name})
