"""Fine-tuning a BERT for sentence classification (chapter 07): batches, loading, checks, probes.

Usage::

    from ptcourse.classify import load_classifier, encode_texts, TextBatches, train_classifier
    model, tokenizer = load_classifier(checkpoint, num_labels=2)          # vocabularies checked
    train_ids = encode_texts(tokenizer, train.texts, max_length=64)        # truncation said once
    loader = TextBatches(train_ids, train.labels, batch_size=32, pad_id=tokenizer.pad_token_id,
                         shuffle=True)                                     # dynamic padding
    history = train_classifier(model, loader, val_loader, lr=3e-4, epochs=5)

Each batch is a dict ``{"input_ids", "attention_mask", "labels"}`` padded to its own
longest sentence (*dynamic padding*), which is what ``BertForSequenceClassification``
and :func:`ptcourse.fit` take.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ptcourse._checks import positive_int

__all__ = [
    "encode_texts",
    "pad_batch",
    "TextBatches",
    "MaskedTextBatches",
    "padding_fraction",
    "check_vocab",
    "check_labels",
    "check_trainable",
    "load_classifier",
    "bert_layers",
    "domain_adapt",
    "fixed_masked_batches",
    "masked_lm_loss",
    "graft_encoder",
    "train_classifier",
    "predict_logits",
    "layer_features",
    "probe_accuracy",
]


# ------------------------------------------------------------------ tokenising and batches
def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text (``[CLS] ... [SEP]``), cut to ``max_length`` tokens (chapter 07).

    Texts longer than ``max_length`` are truncated, and one ``[ptcourse]`` line says how
    many were (a model cannot read past its ``max_position_embeddings``).

    Usage: ``ids = encode_texts(tokenizer, train.texts, max_length=model.config.max_position_embeddings)``
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings")
    if not texts:
        raise ValueError("texts is empty")
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 3:
        raise ValueError(f"max_length must be an int >= 3 (room for [CLS], a token and [SEP]), got {max_length!r}")
    ids = tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
    long = [i for i, seq in enumerate(ids) if len(seq) > max_length]
    if long:
        cut = tokenizer([texts[i] for i in long], truncation=True, max_length=int(max_length))["input_ids"]
        for i, seq in zip(long, cut):
            ids[i] = seq
        longest = max(len(tokenizer(texts[i], verbose=False)["input_ids"]) for i in long[:1000])
        print(f"[ptcourse] {len(long)} of {len(ids)} texts were longer than {max_length} tokens "
              f"(up to {longest}); truncated them to {max_length}.")
    return [list(seq) for seq in ids]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, labels: Any = None) -> dict[str, torch.Tensor]:
    """Pad token-id lists to the longest one: ``input_ids``, ``attention_mask`` (and ``labels``) (chapter 07).

    Usage: ``batch = pad_batch([[2, 7, 3], [2, 3]], pad_id=0, labels=[1, 0])``
    """
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), int(pad_id), dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels, dtype=torch.long)
    return batch



class TextBatches:
    """Dict batches of token ids, padded per batch (dynamic padding); optionally length-bucketed (chapter 07).

    ``bucket=True`` sorts the shuffled sentences by length inside windows of ``window``
    batches and then shuffles the batches, so each batch holds sentences of similar length
    and little padding. The default window (50 batches, as Hugging Face's
    ``group_by_length``) pads least; a window of a few batches pads a little more but keeps
    each batch a mix of sentence kinds where length goes with kind.

    ``epoch_size`` repeats a small training set (a fresh permutation each time) and cuts the
    last repeat, so that an epoch has exactly that many sentences — the same number of steps
    whatever the set's size; a set already that large is used whole. Shuffling uses
    PyTorch's global RNG (``seed_everything``).

    Usage: ``TextBatches(ids, labels, batch_size=32, pad_id=tokenizer.pad_token_id, shuffle=True)``
    """

    def __init__(self, ids: Sequence[Sequence[int]], labels: Any, batch_size: int, pad_id: int, *,
                 shuffle: bool = False, bucket: bool = False, window: int = 50,
                 epoch_size: int | None = None) -> None:
        if not isinstance(ids, Sequence) or not ids:
            raise ValueError("ids must be a non-empty list of token-id lists (see encode_texts)")
        self.ids = ids
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        if self.labels is not None and len(self.labels) != len(ids):
            raise ValueError(f"{len(ids)} sentences but {len(self.labels)} labels")
        self.batch_size, self.pad_id = positive_int(batch_size, "batch_size"), int(pad_id)
        self.shuffle, self.bucket, self.window = bool(shuffle), bool(bucket), positive_int(window, "window")
        self.size = len(ids) if epoch_size is None else max(len(ids), positive_int(epoch_size, "epoch_size"))

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def _order(self) -> list[list[int]]:
        n, repeats = len(self.ids), math.ceil(self.size / len(self.ids))
        if self.shuffle:  # every sentence once per repeat, in a fresh order
            order = torch.cat([torch.randperm(n) for _ in range(repeats)])
        else:
            order = torch.arange(n).repeat(repeats)
        order = order[:self.size].tolist()
        if not self.bucket:
            return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        window = self.window * self.batch_size
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: len(self.ids[i]))
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        return batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for rows in self._order():
            labels = None if self.labels is None else self.labels[rows]
            yield pad_batch([self.ids[i] for i in rows], self.pad_id, labels)


class MaskedTextBatches(TextBatches):
    """Batches for masked-language-model training: ``mask_fn`` hides tokens afresh every epoch.

    ``mask_fn(input_ids, tokenizer)`` returns ``(masked_ids, labels)`` with labels -100 where
    nothing is predicted (chapter 06's :func:`ptcourse.text.mask_tokens`, the 80/10/10 rule).
    Padding positions are never masked: they are set back to ``[PAD]`` with label -100.

    Usage: ``MaskedTextBatches(ids, tokenizer, batch_size=64, shuffle=True)``
    """

    def __init__(self, ids: Sequence[Sequence[int]], tokenizer: Any, batch_size: int, *,
                 shuffle: bool = True, mask_fn: Any = None, mlm_probability: float = 0.15) -> None:
        super().__init__(ids, None, batch_size, tokenizer.pad_token_id, shuffle=shuffle)
        if mask_fn is None:
            from ptcourse.text import mask_tokens as mask_fn
        self.tokenizer, self.mask_fn, self.mlm_probability = tokenizer, mask_fn, mlm_probability

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in super().__iter__():
            ids, labels = self.mask_fn(batch["input_ids"], self.tokenizer, mlm_probability=self.mlm_probability)
            padding = batch["attention_mask"] == 0
            ids, labels = ids.masked_fill(padding, self.pad_id), labels.masked_fill(padding, -100)
            yield {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}


def padding_fraction(loader: Any) -> float:
    """The fraction of the token positions in ``loader``'s batches that are padding (chapter 07).

    Usage: ``padding_fraction(TextBatches(ids, y, 32, pad_id, bucket=True))``
    """
    real = total = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
    if total == 0:
        raise ValueError("the loader yielded no tokens")
    return 1 - real / total


# ------------------------------------------------------------------ checks
def check_vocab(model: nn.Module, tokenizer: Any) -> None:
    """Raise ``ValueError`` unless the tokenizer has exactly as many tokens as the model's embedding rows (chapter 07).

    A tokenizer from another checkpoint gives token ids that index the wrong rows (or
    past the end) of the embedding matrix: silently wrong, or an ``IndexError`` later.

    Usage: ``check_vocab(model, tokenizer)``
    """
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) != rows:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding has {rows} rows: they come "
            "from different checkpoints. Load both from the same directory or hub id."
        )


def check_labels(model: nn.Module, labels: Any) -> None:
    """Raise ``ValueError`` unless every label is in ``0 .. num_labels - 1`` of the model's head (chapter 07).

    Usage: ``check_labels(model, train.labels)``
    """
    labels = torch.as_tensor(labels)
    n = int(model.config.num_labels)
    if labels.numel() == 0:
        raise ValueError("there are no labels")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class ids, got dtype {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n:
        raise ValueError(
            f"the labels run from {low} to {high} but the classification head has num_labels={n} outputs "
            f"(classes 0 .. {n - 1}); load the model with num_labels={max(high + 1, n)}"
        )


def check_trainable(model: nn.Module) -> None:
    """Raise ``ValueError`` when every parameter of ``model`` is frozen (nothing left to train) (chapter 07).

    Usage: ``check_trainable(model)``
    """
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            "every parameter of the model is frozen: there is nothing left to train. Unfreeze at least the "
            "head, e.g. ptcourse.finetune.unfreeze(model, 'classifier')."
        )


def _labels_of(loader: Any) -> torch.Tensor | None:
    return getattr(loader, "labels", None)


# ------------------------------------------------------------------ models
def load_classifier(source: str | Path, num_labels: int = 2, *, pretrained: bool = True,
                    classes: Sequence[str] | None = None, dropout: float | None = None) -> tuple[nn.Module, Any] | None:
    """``BertForSequenceClassification`` and its tokenizer from a directory or a hub id (chapter 07).

    ``pretrained=False`` builds the same architecture (same config) with random weights:
    the "no pretraining" baseline. A hub id goes through :func:`ptcourse.hub.hf_pretrained`
    and gives ``None`` (with a one-line notice) when it is neither cached nor reachable.
    The vocabularies are checked (:func:`check_vocab`); attention uses PyTorch's SDPA.
    ``dropout`` (if given) replaces the checkpoint's hidden and attention dropout rates.

    Usage: ``model, tokenizer = load_classifier(mini_bert_checkpoint(), num_labels=2)``
    """
    from transformers import AutoConfig, AutoTokenizer, BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    from ptcourse.hub import hf_pretrained

    if isinstance(num_labels, bool) or not isinstance(num_labels, numbers.Integral) or num_labels < 2:
        raise ValueError(f"num_labels must be an int >= 2, got {num_labels!r}")
    classes = list(classes) if classes is not None else [str(i) for i in range(num_labels)]
    if len(classes) != num_labels:
        raise ValueError(f"{len(classes)} class names for num_labels={num_labels}")
    options = dict(num_labels=int(num_labels), id2label=dict(enumerate(classes)),
                   label2id={c: i for i, c in enumerate(classes)}, attn_implementation="sdpa")
    if dropout is not None:
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1) or None, got {dropout!r}")
        options.update(hidden_dropout_prob=float(dropout), attention_probs_dropout_prob=float(dropout))
    local = Path(source).is_dir()
    if not local and Path(source).expanduser().is_absolute():
        raise FileNotFoundError(f"no checkpoint directory at {source}")
    load = (lambda cls, **kw: cls.from_pretrained(source, **kw)) if local else (
        lambda cls, **kw: hf_pretrained(cls, str(source), **kw))
    tokenizer = load(AutoTokenizer)
    if tokenizer is None:
        return None
    if pretrained:
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the load report: the new head is "missing", the MLM/NSP heads "unexpected"
        try:
            model = load(BertForSequenceClassification, **options)
        finally:
            hf_logging.set_verbosity(verbosity)
    else:
        config = load(AutoConfig, **{k: v for k, v in options.items() if k != "attn_implementation"})
        model = None if config is None else BertForSequenceClassification(config)  # random weights
    if model is None:
        return None
    check_vocab(model, tokenizer)
    return model, tokenizer


def bert_layers(model: nn.Module) -> list[Any]:
    """The layers of a BERT classifier from bottom to top, for :func:`ptcourse.finetune.layerwise_lr_decay` (chapter 07).

    ``[embeddings, layer 0, ..., layer L-1, [pooler, classifier]]``: the head sits in the top group.

    Usage: ``layerwise_lr_decay(bert_layers(model), base_lr=3e-4, decay=0.8, model=model)``
    """
    base = model.base_model
    top = [m for m in (getattr(base, "pooler", None), getattr(model, "classifier", None)) if m is not None]
    if not top:
        raise ValueError("the model has neither a pooler nor a classifier to form the top layer")
    return [base.embeddings, *base.encoder.layer, top]


# ------------------------------------------------------------------ training
def train_classifier(
    model: nn.Module,
    train_loader: Any,
    val_loader: Any,
    *,
    lr: float,
    epochs: int,
    warmup: float = 0.1,
    schedule: str = "linear",
    weight_decay: float = 0.01,
    groups: list[dict[str, Any]] | None = None,
    regulariser: Any = None,
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = 1.0,
    device: Any = None,
    amp: bool | str = "auto",
) -> Any:
    """Fine-tune ``model`` with AdamW and a warm-up schedule; keep the epoch best on validation (chapter 07).

    ``schedule="linear"``: linear warm-up over the first ``warmup`` fraction of the optimizer
    steps, then linear decay to 0 (Devlin et al., 2019); ``"constant"``: ``lr`` throughout.
    Parameter groups: ``groups`` if given (e.g. layer-wise LR decay), else one learning rate
    with no weight decay on biases and LayerNorm (:func:`ptcourse.finetune.param_groups`).
    ``regulariser()`` (e.g. an :class:`~ptcourse.finetune.L2SP`) is added to the loss. Returns
    ``fit``'s per-epoch history; the model ends with the weights of its best validation epoch.

    Usage: ``history = train_classifier(model, train_loader, val_loader, lr=3e-4, epochs=5)``
    """
    from transformers import get_constant_schedule, get_linear_schedule_with_warmup

    from ptcourse.finetune import param_groups
    from ptcourse.training import accuracy, fit

    if schedule not in ("linear", "constant"):
        raise ValueError(f"schedule must be 'linear' or 'constant', got {schedule!r}")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {warmup!r}")
    check_trainable(model)
    for loader in (train_loader, val_loader):
        if _labels_of(loader) is not None:
            check_labels(model, _labels_of(loader))
    if groups is None:
        groups = param_groups(model, {}, default_lr=lr, weight_decay=weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=lr)
    steps = epochs * math.ceil(len(train_loader) / grad_accum_steps)
    scheduler = (get_linear_schedule_with_warmup(optimizer, round(warmup * steps), steps)
                 if schedule == "linear" else get_constant_schedule(optimizer))
    loss_fn = None
    if regulariser is not None:
        def loss_fn(outputs: Any, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {"ce": outputs.loss, "reg": regulariser()}
    return fit(model, train_loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn,
               val_loader=val_loader, metrics={"acc": accuracy}, grad_accum_steps=grad_accum_steps,
               max_grad_norm=max_grad_norm, monitor="val_acc", device=device, amp=amp, progress=False,
               early_stopping_patience=epochs + 1)  # never stops early; fit restores the best epoch


def domain_adapt(checkpoint: str | Path, ids: Sequence[Sequence[int]], tokenizer: Any, out_dir: str | Path, *,
                 epochs: int, lr: float = 5e-4, batch_size: int = 64, mask_fn: Any = None,
                 device: Any = None) -> Any:
    """Continue masked-language-model pretraining on the task's own (unlabelled) texts; save it (chapter 07).

    Domain-adaptive pretraining (Gururangan et al., 2020): the ``BertForPreTraining`` in
    ``checkpoint`` trains a few more epochs with the MLM loss alone on ``ids``, and is saved
    with its tokenizer to ``out_dir``, ready for :func:`load_classifier`. The NSP head and the
    pooler get no gradient and are saved unchanged. Returns ``fit``'s history.

    Usage: ``domain_adapt(mini_bert_checkpoint(), train_ids, tokenizer, "dapt", epochs=5)``
    """
    import torch.nn.functional as F
    from transformers import BertForPreTraining, get_linear_schedule_with_warmup

    from ptcourse.finetune import param_groups
    from ptcourse.training import fit

    model = BertForPreTraining.from_pretrained(checkpoint, attn_implementation="sdpa")
    check_vocab(model, tokenizer)
    loader = MaskedTextBatches(ids, tokenizer, batch_size, shuffle=True, mask_fn=mask_fn)

    def mlm_loss(outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # BertForPreTraining computes no loss without next_sentence_label: the MLM loss by hand
        logits = outputs.prediction_logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=-100)

    optimizer = torch.optim.AdamW(param_groups(model, {}, default_lr=lr, weight_decay=0.01))
    steps = epochs * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(0.1 * steps), steps)
    history = fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                  loss_fn=mlm_loss, max_grad_norm=1.0, device=device, progress=False)
    model.to("cpu").save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return history


def fixed_masked_batches(ids: Sequence[Sequence[int]], tokenizer: Any, batch_size: int = 128, seed: int = 0,
                         mask_fn: Any = None) -> list[dict[str, torch.Tensor]]:
    """Masked-language-model batches masked once, with a seeded generator: the same masks every time (chapter 07).

    Comparing MLM losses (before and after fine-tuning, one model against another) needs the
    same masked positions each time. ``mask_fn`` defaults to :func:`ptcourse.text.mask_tokens`.

    Usage: ``held_out = fixed_masked_batches(val_ids, tokenizer); masked_lm_loss(model, held_out)``
    """
    if mask_fn is None:
        from ptcourse.text import mask_tokens as mask_fn
    generator = torch.Generator().manual_seed(seed)
    fixed = lambda input_ids, tok, mlm_probability: mask_fn(input_ids, tok, mlm_probability, generator=generator)
    return list(MaskedTextBatches(ids, tokenizer, batch_size, shuffle=False, mask_fn=fixed))


@torch.no_grad()
def masked_lm_loss(model: nn.Module, batches: Sequence[Mapping[str, torch.Tensor]]) -> float:
    """The mean cross-entropy over the masked tokens of ``batches`` (a ``BertForPreTraining`` or ``...MaskedLM``) (chapter 07).

    Usage: ``masked_lm_loss(BertForPreTraining.from_pretrained(path), fixed_masked_batches(ids, tokenizer))``
    """
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        for batch in batches:
            out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
            logits = getattr(out, "prediction_logits", None)
            logits = out.logits if logits is None else logits
            labels = batch["labels"].to(device)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                     ignore_index=-100, reduction="sum").item()
            count += int((labels != -100).sum())
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the batches hold no masked token (labels are all -100)")
    return total / count


def graft_encoder(pretraining_model: nn.Module, classifier: nn.Module) -> nn.Module:
    """A copy of ``pretraining_model`` (with its MLM head) whose encoder is the fine-tuned ``classifier``'s (chapter 07).

    How much of its pretraining did fine-tuning destroy? Put the fine-tuned encoder back under
    the pretrained MLM head and measure :func:`masked_lm_loss` on held-out text.

    Usage: ``masked_lm_loss(graft_encoder(pretrained, fine_tuned), held_out_batches)``
    """
    import copy

    grafted = copy.deepcopy(pretraining_model)
    state = {k: v for k, v in classifier.base_model.state_dict().items() if not k.startswith("pooler.")}
    missing, unexpected = grafted.base_model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise ValueError(f"the encoders do not match: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return grafted.to(next(classifier.parameters()).device)


# ------------------------------------------------------------------ predictions and features
@torch.no_grad()
def predict_logits(model: nn.Module, loader: Any) -> torch.Tensor:
    """The logits of every sentence of ``loader`` (in its order), computed in eval mode (chapter 07).

    Usage: ``preds = predict_logits(model, test_loader).argmax(-1)``
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for batch in loader:
            out.append(model(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device)).logits.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def layer_features(model: nn.Module, loader: Any, pooling: str = "mean") -> list[torch.Tensor]:
    """One (N, hidden) feature matrix per layer: the embeddings, then each Transformer layer (chapter 07).

    ``pooling="mean"`` averages the hidden states over the real (non-padding) tokens;
    ``"cls"`` takes the ``[CLS]`` position.

    Usage: ``feats = layer_features(model, val_loader); len(feats) == num_hidden_layers + 1``
    """
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    encoder = getattr(model, "base_model", model)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    per_layer: list[list[torch.Tensor]] = []
    try:
        for batch in loader:
            mask = batch["attention_mask"].to(device)
            states = encoder(input_ids=batch["input_ids"].to(device), attention_mask=mask,
                             output_hidden_states=True).hidden_states
            if not per_layer:
                per_layer = [[] for _ in states]
            for store, h in zip(per_layer, states):
                h = h.float()
                pooled = h[:, 0] if pooling == "cls" else (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                store.append(pooled.cpu())
    finally:
        encoder.train(was_training)
    return [torch.cat(store) for store in per_layer]


def probe_accuracy(train_x: torch.Tensor, train_y: Any, test_x: torch.Tensor, test_y: Any, C: float = 1.0) -> float:
    """Accuracy of a linear probe: standardised features, then logistic regression (scikit-learn) (chapter 07).

    Usage: ``probe_accuracy(feats_train[2], train.labels, feats_val[2], val.labels)``
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(torch.as_tensor(train_x).numpy(), torch.as_tensor(train_y).numpy())
    return float(probe.score(torch.as_tensor(test_x).numpy(), torch.as_tensor(test_y).numpy()))
