"""Sentiment data for chapter 07: SST-2 when it can be had, a synthetic set that is always there.

Usage::

    from ptcourse.sentiment import load_sentiment
    train, val, test = load_sentiment("auto")     # SST-2 if cached / reachable, else synthetic
    print(train.name, len(train), train.texts[0], int(train.labels[0]))
    few = train.subset_per_class(16, seed=0)       # 16 labelled sentences per class

Two sources, one format (:class:`TextSet`: a list of strings and a tensor of labels,
0 = negative, 1 = positive):

- **SST-2** (GLUE; Socher et al., 2013), through :func:`ptcourse.hub.load_hf_dataset`.
  Its test labels are hidden, so its *validation* split is our test set and our
  validation set is carved out of its training split.
- **A synthetic review set** (:func:`make_synthetic_sentiment`), generated
  deterministically from a small grammar in which word order decides the label:
  negation flips a clause ("the plot was *not* gripping"), contrast keeps the clause
  after "but" ("good *but* boring" is negative), "although" / "even though" mark the
  clause that does *not* count, and intensifiers ("very") change nothing. Clauses joined
  by "and" agree, clauses joined by "but" disagree -- as in real reviews
  (Hatzivassiloglou & McKeown, 1997), which is what lets masked-language-model
  pretraining on the unlabelled texts learn which adjectives go together. The validation
  and test sentences use (aspect, adjective) combinations and clause templates that never
  occur in the training split.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

__all__ = [
    "TextSet",
    "TextSplits",
    "make_synthetic_sentiment",
    "load_sst2",
    "sst2_splits",
    "load_sentiment",
    "POSITIVE",
    "NEGATIVE",
    "ASPECTS",
]

CLASSES = ["negative", "positive"]


@dataclass(eq=False)
class TextSet:
    """Sentences ``texts`` with integer ``labels`` (0 = negative, 1 = positive) and a name (chapter 07).

    Usage: ``text, label = ds[0]; few = ds.subset_per_class(8, seed=1)``
    """

    texts: list[str]
    labels: torch.Tensor
    name: str
    classes: list[str]

    def __post_init__(self) -> None:
        if not isinstance(self.texts, list) or not all(isinstance(t, str) for t in self.texts):
            raise TypeError("texts must be a list of strings")
        self.labels = torch.as_tensor(self.labels, dtype=torch.long)
        if self.labels.ndim != 1 or len(self.labels) != len(self.texts):
            raise ValueError(
                f"expected one label per text: {len(self.texts)} texts, labels of shape {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], int(self.labels[i])

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "TextSet":
        """A new TextSet with the given rows, in the given order."""
        idx = torch.as_tensor(indices, dtype=torch.long).flatten()
        return TextSet([self.texts[i] for i in idx.tolist()], self.labels[idx], self.name, self.classes)

    def subset_per_class(self, k: int, seed: int = 0) -> "TextSet":
        """Exactly ``k`` randomly chosen sentences of every class (a few-label training set)."""
        from ptcourse.data import per_class_indices

        return self.subset(per_class_indices(self.labels, k, seed))

    def __repr__(self) -> str:
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return f"TextSet({self.name!r}, n={len(self)}, per class={counts})"


class TextSplits(NamedTuple):
    """Disjoint train / validation / test sets of sentences (chapter 07).

    Usage: ``splits = load_sentiment(); splits.train.texts, splits.train.labels``
    """

    train: TextSet
    val: TextSet
    test: TextSet


# ------------------------------------------------------------------ the synthetic grammar
POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "superb", "charming", "clever",
            "gripping", "delightful", "beautiful", "funny", "fresh", "moving", "engaging", "powerful")
NEGATIVE = ("bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "predictable",
            "tedious", "bland", "messy", "forgettable", "flat", "lifeless", "silly", "painful")
ASPECTS = ("film", "movie", "plot", "acting", "script", "soundtrack", "ending", "cast", "story",
           "dialogue", "pacing", "direction")
INTENSIFIERS = ("very", "really", "truly", "quite", "extremely")
# clause templates: (template, negated); {a} is the aspect, {x} the (intensified) adjective
TRAIN_FRAMES = (("the {a} was {x}", False), ("the {a} is {x}", False), ("i found the {a} {x}", False),
                ("the {a} was not {x}", True), ("the {a} is not {x}", True), ("the {a} was never {x}", True),
                ("i did not find the {a} {x}", True))
NEW_FRAMES = (("the {a} seemed {x}", False), ("the {a} did not seem {x}", True))  # validation / test only
# sentence structures: (template, do the two clauses agree?, which clause carries the label)
STRUCTURES = (("{c1}", None, 1), ("{c1} and {c2}", True, 1), ("{c1} but {c2}", False, 2),
              ("although {c1}, {c2}", False, 2), ("{c1} even though {c2}", False, 1))
_STRUCTURE_WEIGHTS = (0.45, 0.2, 0.15, 0.1, 0.1)
NEGATION_RATE = 0.3  # the fraction of clauses that are negated
HELD_OUT_ASPECTS_PER_ADJECTIVE = 3  # (aspect, adjective) pairs seen only in validation / test


def _held_out_pairs(seed: int) -> set[tuple[str, str]]:
    """For every adjective, the aspects it is paired with only outside the training split."""
    rng = random.Random(f"held-out pairs {seed}")
    return {(a, adj) for adj in POSITIVE + NEGATIVE for a in rng.sample(ASPECTS, HELD_OUT_ASPECTS_PER_ADJECTIVE)}


def _clause(polarity: int, rng: random.Random, held: set[tuple[str, str]], split: str) -> str:
    """One clause whose meaning has ``polarity`` (+1 / -1), using the pairs and frames of ``split``."""
    frames = TRAIN_FRAMES if split == "train" else TRAIN_FRAMES + NEW_FRAMES
    negated = rng.random() < NEGATION_RATE
    template = rng.choice([t for t, neg in frames if neg == negated])
    words = POSITIVE if polarity * (-1 if negated else 1) > 0 else NEGATIVE
    while True:
        aspect, adjective = rng.choice(ASPECTS), rng.choice(words)
        if ((aspect, adjective) in held) == (split != "train"):
            break
    x = f"{rng.choice(INTENSIFIERS)} {adjective}" if rng.random() < 0.4 else adjective
    return template.format(a=aspect, x=x)


def _sentence(label: int, rng: random.Random, held: set[tuple[str, str]], split: str) -> str:
    template, agree, carrier = rng.choices(STRUCTURES, weights=_STRUCTURE_WEIGHTS)[0]
    polarity = 1 if label == 1 else -1
    if agree is None:
        return template.format(c1=_clause(polarity, rng, held, split))
    other = polarity if agree else -polarity
    p1, p2 = (polarity, other) if carrier == 1 else (other, polarity)
    return template.format(c1=_clause(p1, rng, held, split), c2=_clause(p2, rng, held, split))


def _check_count(value: Any, what: str, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _generate(n: int, split: str, rng: random.Random, held: set[tuple[str, str]], taken: set[str]) -> TextSet:
    texts, labels = [], []
    for i in range(n):
        label = i % 2  # balanced classes
        for _ in range(1000):
            text = _sentence(label, rng, held, split)
            if text not in taken:
                break
        else:  # pragma: no cover - the grammar has billions of sentences
            raise RuntimeError("could not generate enough distinct sentences")
        taken.add(text)
        texts.append(text)
        labels.append(label)
    order = list(range(n))
    rng.shuffle(order)
    return TextSet([texts[i] for i in order], torch.tensor(labels)[order], "synthetic-sentiment", list(CLASSES))


def make_synthetic_sentiment(n_train: int = 4000, n_val: int = 500, n_test: int = 1000, seed: int = 0) -> TextSplits:
    """Deterministic synthetic reviews in which word order decides the label (chapter 07).

    Balanced classes; no sentence occurs twice across the splits. Validation and test use
    (aspect, adjective) pairs and clause templates (``NEW_FRAMES``) that the training
    split never contains; ``seed`` changes the sentences and which pairs are held out.

    Usage: ``train, val, test = make_synthetic_sentiment(2000, 300, 600, seed=0)``
    """
    n_train, n_val, n_test = (_check_count(n, w) for n, w in ((n_train, "n_train"), (n_val, "n_val"),
                                                               (n_test, "n_test")))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an int, got {seed!r}")
    held, taken = _held_out_pairs(int(seed)), set()
    rng = random.Random(f"synthetic sentiment {seed}")
    train = _generate(n_train, "train", rng, held, taken)
    val = _generate(n_val, "val", rng, held, taken)
    test = _generate(n_test, "test", rng, held, taken)
    return TextSplits(train, val, test)


# ------------------------------------------------------------------ SST-2
def _stratified(labels: torch.Tensor, n_held: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, held out) with ``n_held`` rows held out class by class."""
    from sklearn.model_selection import train_test_split

    idx = list(range(len(labels)))
    keep, held = train_test_split(idx, test_size=n_held, stratify=labels.numpy(), random_state=seed)
    return sorted(keep), sorted(held)


def _split_of(dataset: Any, split: str) -> tuple[list[str], torch.Tensor]:
    if split not in dataset:
        raise ValueError(f"an SST-2 DatasetDict needs a {split!r} split, got splits {list(dataset)}")
    part = dataset[split]
    missing = {"sentence", "label"} - set(part.column_names)
    if missing:
        raise ValueError(f"the SST-2 {split!r} split lacks the column(s) {sorted(missing)}; has {part.column_names}")
    texts, labels = [str(s).strip() for s in part["sentence"]], torch.tensor(part["label"], dtype=torch.long)
    if len(texts) == 0:
        raise ValueError(f"the SST-2 {split!r} split is empty")
    if not set(labels.tolist()) <= {0, 1}:
        raise ValueError(f"SST-2 labels must be 0 or 1 (hidden test labels are -1), got {sorted(set(labels.tolist()))}")
    return texts, labels


def sst2_splits(dataset: Any, val_size: int = 872, train_size: int | None = None, seed: int = 0) -> TextSplits:
    """Our train / validation / test from the GLUE SST-2 ``DatasetDict`` (chapter 07).

    Test = SST-2's validation split (its test labels are hidden); validation = a stratified
    ``val_size`` sentences carved out of its train split; ``train_size`` optionally caps
    the rest (stratified, fixed by ``seed``).

    Usage: ``train, val, test = sst2_splits(load_hf_dataset("nyu-mll/glue", "sst2"))``
    """
    train_texts, train_labels = _split_of(dataset, "train")
    test_texts, test_labels = _split_of(dataset, "validation")
    val_size = _check_count(val_size, "val_size")
    if val_size >= len(train_texts) - 2:
        raise ValueError(f"val_size={val_size} leaves too few of the {len(train_texts)} training sentences")
    keep, held = _stratified(train_labels, val_size, seed)
    if train_size is not None:
        train_size = _check_count(train_size, "train_size")
        if train_size < len(keep):
            chosen, _ = _stratified(train_labels[keep], len(keep) - train_size, seed)
            keep = [keep[i] for i in chosen]
    full = TextSet(train_texts, train_labels, "sst2", list(CLASSES))
    return TextSplits(full.subset(keep), full.subset(held), TextSet(test_texts, test_labels, "sst2", list(CLASSES)))


def load_sst2(val_size: int = 872, train_size: int | None = None, seed: int = 0) -> TextSplits | None:
    """SST-2 from the course's cache or the hub (``nyu-mll/glue``, ``sst2``), else ``None`` (chapter 07).

    Usage: ``splits = load_sst2(train_size=20_000)``
    """
    from ptcourse.hub import load_hf_dataset

    dataset = load_hf_dataset("nyu-mll/glue", "sst2")
    return None if dataset is None else sst2_splits(dataset, val_size, train_size, seed)


def load_sentiment(
    source: str = "auto",
    *,
    n_train: int = 4000,
    n_val: int = 500,
    n_test: int = 1000,
    seed: int = 0,
) -> TextSplits:
    """Sentiment splits from ``source`` = "auto" (SST-2, else synthetic), "sst2" or "synthetic" (chapter 07).

    With SST-2, ``n_train`` caps its training split and ``n_val`` is the validation size
    (the test set is always SST-2's 872 validation sentences); with the synthetic set the
    three sizes are used as given. Prints one line saying which source is in use.

    Usage: ``train, val, test = load_sentiment("auto", n_train=2000)``
    """
    if source not in ("auto", "sst2", "synthetic"):
        raise ValueError(f"source must be 'auto', 'sst2' or 'synthetic', got {source!r}")
    splits = load_sst2(val_size=n_val, train_size=n_train, seed=seed) if source != "synthetic" else None
    if splits is not None:
        print(f"[ptcourse] sentiment data: SST-2 (GLUE), {len(splits.train)} train / {len(splits.val)} "
              f"validation / {len(splits.test)} test (SST-2's validation split) sentences.")
        return splits
    why = "" if source == "synthetic" else "SST-2 is unavailable; "
    splits = make_synthetic_sentiment(n_train, n_val, n_test, seed)
    print(f"[ptcourse] sentiment data: {why}the synthetic review set, {len(splits.train)} train / "
          f"{len(splits.val)} validation / {len(splits.test)} test sentences.")
    return splits
