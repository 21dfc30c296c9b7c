"""The sentiment data of chapter 07: the synthetic grammar's labels, its splits, and SST-2 with its fallback."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from ptcourse import sentiment
from ptcourse.sentiment import (
    ASPECTS,
    NEGATIVE,
    NEW_FRAMES,
    POSITIVE,
    TextSet,
    load_sentiment,
    make_synthetic_sentiment,
    sst2_splits,
)


@pytest.fixture(scope="module")
def splits():
    return make_synthetic_sentiment(3000, 400, 800, seed=0)


# ------------------------------------------------------------------ an independent reading of the grammar
NEGATORS = {"not", "never"}


def clause_polarity(clause: str) -> int:
    """+1 / -1: the adjective's polarity, flipped by a negation word."""
    words = clause.split()
    adjective = words[-1]
    assert adjective in POSITIVE + NEGATIVE, clause
    polarity = 1 if adjective in POSITIVE else -1
    return -polarity if NEGATORS & set(words) else polarity


def oracle(sentence: str) -> int:
    """The label a careful reader gives, parsed from the words (not from the generator's code)."""
    if sentence.startswith("although "):
        _, main = sentence[len("although "):].split(", ")
        polarity = clause_polarity(main)
    elif " even though " in sentence:
        main, _ = sentence.split(" even though ")
        polarity = clause_polarity(main)
    elif " but " in sentence:
        _, main = sentence.split(" but ")
        polarity = clause_polarity(main)
    elif " and " in sentence:
        first, second = sentence.split(" and ")
        polarity = clause_polarity(first)
        assert clause_polarity(second) == polarity, f"clauses joined by 'and' must agree: {sentence}"
    else:
        polarity = clause_polarity(sentence)
    return int(polarity > 0)


def test_oracle_on_hand_written_sentences():
    assert oracle("the plot was good") == 1
    assert oracle("the plot was not good") == 0
    assert oracle("the plot was not very good") == 0
    assert oracle("the plot was good but the acting was boring") == 0
    assert oracle("the acting was boring but the plot was good") == 1
    assert oracle("although the plot was good, the acting was boring") == 0
    assert oracle("the plot was good even though the acting was boring") == 1


def test_every_label_is_what_a_reader_would_say(splits):
    for part in splits:
        for text, label in zip(part.texts, part.labels.tolist()):
            assert oracle(text) == label, text


def test_contrast_and_agreement_hold(splits):
    for text in splits.train.texts:
        if " but " in text:
            first, second = text.split(" but ")
            assert clause_polarity(first) == -clause_polarity(second), text


# ------------------------------------------------------------------ the splits
def test_sizes_balance_and_determinism(splits):
    assert [len(s) for s in splits] == [3000, 400, 800]
    for part in splits:
        assert torch.bincount(part.labels).tolist() == [len(part) // 2] * 2
        assert part.name == "synthetic-sentiment" and part.classes == ["negative", "positive"]
    again = make_synthetic_sentiment(3000, 400, 800, seed=0)
    assert again.train.texts == splits.train.texts and torch.equal(again.test.labels, splits.test.labels)
    other = make_synthetic_sentiment(3000, 400, 800, seed=1)
    assert other.train.texts != splits.train.texts


def test_no_sentence_is_in_two_splits(splits):
    train, val, test = (set(s.texts) for s in splits)
    assert len(train) == len(splits.train.texts)
    assert not train & val and not train & test and not val & test


def _pairs(texts):
    pairs = set()
    for text in texts:
        for clause in re.split(r" but | and | even though |, ", text.removeprefix("although ")):
            words = clause.split()
            aspect = next(w for w in words if w in ASPECTS)
            pairs.add((aspect, words[-1]))
    return pairs


def test_validation_and_test_use_combinations_and_templates_never_seen_in_training(splits):
    train_pairs = _pairs(splits.train.texts)
    for part in (splits.val, splits.test):
        assert not _pairs(part.texts) & train_pairs
    new_words = {w for template, _ in NEW_FRAMES for w in template.split() if not w.startswith("{")} - {"the", "not",
                                                                                                      "did"}
    train_words = {w for t in splits.train.texts for w in t.split()}
    test_words = {w for t in splits.test.texts for w in t.split()}
    assert new_words and not new_words & train_words and new_words <= test_words
    # every adjective and aspect is still seen in training: only the combinations are new
    assert set(POSITIVE + NEGATIVE + ASPECTS) <= train_words


def test_a_bag_of_words_cannot_read_the_labels(splits):
    """Word order decides: a unigram bag-of-words classifier stays far from perfect (about 0.62).

    Negated clauses are 30 % of clauses and contrast sentences a third of the sentences,
    so word counts alone carry some signal, but much less than the order does."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = CountVectorizer(token_pattern=r"[a-z]+")
    clf = LogisticRegression(max_iter=2000).fit(vec.fit_transform(splits.train.texts), splits.train.labels.numpy())
    assert clf.score(vec.transform(splits.test.texts), splits.test.labels.numpy()) < 0.66


@pytest.mark.parametrize("kwargs, error, message", [
    ({"n_train": 0}, ValueError, "n_train must be an int >= 2"),
    ({"n_val": -5}, ValueError, "n_val must be an int >= 2"),
    ({"n_test": 2.5}, ValueError, "n_test must be an int"),
    ({"n_train": True}, ValueError, "n_train must be an int"),
    ({"seed": "zero"}, ValueError, "seed must be an int"),
    ({"seed": 1.0}, ValueError, "seed must be an int"),
])
def test_synthetic_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_synthetic_sentiment(**{"n_train": 10, "n_val": 4, "n_test": 4, **kwargs})


def test_numpy_integers_are_accepted():
    parts = make_synthetic_sentiment(np.int64(10), np.int32(4), np.int64(6), seed=np.int64(3))
    assert [len(p) for p in parts] == [10, 4, 6]


# ------------------------------------------------------------------ TextSet
def test_textset_subset_and_per_class(splits):
    few = splits.train.subset_per_class(5, seed=2)
    assert torch.bincount(few.labels).tolist() == [5, 5]
    for text, label in few:
        assert oracle(text) == label
    assert few.texts != splits.train.subset_per_class(5, seed=3).texts
    sub = splits.val.subset(torch.tensor([3, 1]))
    assert sub.texts == [splits.val.texts[3], splits.val.texts[1]] and sub.labels.tolist() == [
        int(splits.val.labels[3]), int(splits.val.labels[1])]
    assert "per class=[5, 5]" in repr(few)


@pytest.mark.parametrize("texts, labels, error, message", [
    (["a", "b"], [0], ValueError, "one label per text"),
    (["a", 3], [0, 1], TypeError, "list of strings"),
    ("ab", [0, 1], TypeError, "list of strings"),
    (["a", "b"], [[0, 1]], ValueError, "one label per text"),
])
def test_textset_bad_input(texts, labels, error, message):
    with pytest.raises(error, match=message):
        TextSet(texts, labels, "x", ["negative", "positive"])


# ------------------------------------------------------------------ SST-2 (a fake DatasetDict of the same structure)
def fake_sst2(n_train: int = 60, n_val: int = 12):
    import datasets

    def part(n: int, prefix: str, hidden: bool = False) -> datasets.Dataset:
        return datasets.Dataset.from_dict({
            "sentence": [f"{prefix} sentence {i} " for i in range(n)],
            "label": [-1 if hidden else i % 2 for i in range(n)],
            "idx": list(range(n)),
        })

    return datasets.DatasetDict({"train": part(n_train, "train"), "validation": part(n_val, "val"),
                                 "test": part(8, "test", hidden=True)})


def test_sst2_splits_use_validation_as_test_and_carve_validation_from_train():
    train, val, test = sst2_splits(fake_sst2(), val_size=10, seed=0)
    assert test.texts == [f"val sentence {i}" for i in range(12)]  # stripped, in order
    assert len(val) == 10 and len(train) == 50
    assert torch.bincount(val.labels).tolist() == [5, 5]
    assert not set(train.texts) & set(val.texts)
    assert set(train.texts) | set(val.texts) == {f"train sentence {i}" for i in range(60)}
    for part in (train, val):
        for text, label in part:
            assert int(text.split()[-1]) % 2 == label  # labels travel with their sentences
    assert {p.name for p in (train, val, test)} == {"sst2"}
    capped, _, _ = sst2_splits(fake_sst2(), val_size=10, train_size=20, seed=0)
    assert len(capped) == 20 and torch.bincount(capped.labels).tolist() == [10, 10]
    assert set(capped.texts) <= set(train.texts)


def test_load_sentiment_prefers_sst2_when_available(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("ptcourse.hub.load_hf_dataset", lambda *args: calls.append(args) or fake_sst2())
    train, val, test = load_sentiment("auto", n_train=30, n_val=10)
    assert calls == [("nyu-mll/glue", "sst2")]
    assert train.name == "sst2" and len(train) == 30 and len(val) == 10 and len(test) == 12
    assert "SST-2 (GLUE)" in capsys.readouterr().out


def test_load_sentiment_falls_back_to_synthetic_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr("ptcourse.hub.load_hf_dataset", lambda *args: None)
    train, val, test = load_sentiment("auto", n_train=20, n_val=6, n_test=8)
    assert train.name == "synthetic-sentiment" and [len(train), len(val), len(test)] == [20, 6, 8]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[ptcourse]")]
    assert len(lines) == 1 and "SST-2 is unavailable" in lines[0] and "synthetic" in lines[0]


def test_load_sentiment_synthetic_never_asks_the_hub(monkeypatch):
    monkeypatch.setattr("ptcourse.hub.load_hf_dataset", lambda *args: pytest.fail("asked the hub"))
    assert load_sentiment("synthetic", n_train=10, n_val=4, n_test=4).train.name == "synthetic-sentiment"


def test_load_sentiment_offline_really_falls_back(capsys):
    """Offline (as in the test suite) and with nothing cached, SST-2 is skipped in one line."""
    train, _, _ = load_sentiment("auto", n_train=10, n_val=4, n_test=4)
    out = capsys.readouterr().out
    if train.name == "synthetic-sentiment":  # a machine with SST-2 cached would load it instead
        assert "synthetic" in out


def _without(split=None, column=None, hidden_validation=False):
    import datasets

    data = fake_sst2()
    if split:
        del data[split]
    if column:
        data = datasets.DatasetDict({k: v.remove_columns(column) for k, v in data.items()})
    if hidden_validation:
        data["validation"] = data["test"]
    return data


@pytest.mark.parametrize("data, kwargs, error, message", [
    (_without(split="validation"), {}, ValueError, "needs a 'validation' split"),
    (_without(column="sentence"), {}, ValueError, r"lacks the column\(s\) \['sentence'\]"),
    (_without(hidden_validation=True), {}, ValueError, "hidden test labels are -1"),
    (fake_sst2(), {"val_size": 0}, ValueError, "val_size must be an int >= 2"),
    (fake_sst2(), {"val_size": 59}, ValueError, "leaves too few"),
    (fake_sst2(), {"train_size": 1}, ValueError, "train_size must be an int >= 2"),
])
def test_sst2_bad_input(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        sst2_splits(data, **{"val_size": 10, **kwargs})


def test_load_sentiment_bad_source():
    with pytest.raises(ValueError, match="source must be 'auto', 'sst2' or 'synthetic'"):
        load_sentiment("imdb")


def test_module_names_its_sources():
    assert "Hatzivassiloglou" in sentiment.__doc__ and "SST-2" in sentiment.__doc__
