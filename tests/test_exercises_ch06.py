"""Every check of chapter 06's exercises, with correct and wrong answers."""

from __future__ import annotations

import math

import pytest
import torch

from ptcourse.exercises import ch06 as ex
from ptcourse.text import IS_NEXT, NOT_NEXT


# ----------------------------------------------------------------- q1
def test_q1_expected_masks(capsys):
    def exact(ids, special, vocab, p=0.15):
        return (~torch.isin(ids, torch.as_tensor(special))).sum() * p * (0.8 + 0.1 / vocab)

    def approx(ids, special, vocab, p=0.15):
        return float((~torch.isin(ids, torch.tensor(special))).sum()) * 0.8 * p

    assert ex.q1.check(exact) and ex.q1.check(approx)
    assert "✅" in capsys.readouterr().out
    ok, msg = ex.q1.evaluate(lambda ids, special, vocab, p=0.15: ids.numel() * p * 0.8)
    assert not ok and "special tokens" in msg
    ok, msg = ex.q1.evaluate(lambda ids, special, vocab, p=0.15: (~torch.isin(ids, torch.tensor(special))).sum() * p)
    assert not ok and "chosen" in msg
    ok, msg = ex.q1.evaluate(lambda ids, special, vocab, p=0.15: (~torch.isin(ids, torch.tensor(special))).sum() * 0.8)
    assert not ok and "probability p first" in msg
    ok, msg = ex.q1.evaluate(lambda ids, special, vocab, p=0.15: 1.0)
    assert not ok and "off" in msg
    ok, msg = ex.q1.evaluate(3.0)
    assert not ok and "the function, without calling it" in msg
    ok, msg = ex.q1.evaluate(lambda ids, special, vocab, p=0.15: "many")
    assert not ok and "number" in msg


# ----------------------------------------------------------------- q2
def _corrupt(input_ids, chosen, mask_id, vocab_size, generator=None):
    u = torch.rand(input_ids.shape, generator=generator)
    out = input_ids.clone()
    out[chosen & (u < 0.8)] = mask_id
    rand = chosen & (u >= 0.8) & (u < 0.9)
    out[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
    return out


def _corrupt_two_draws(input_ids, chosen, mask_id, vocab_size, generator=None):
    """Also correct: independent draws like DataCollatorForLanguageModeling (0.8, then 0.5 of the rest)."""
    masked = chosen & (torch.rand(input_ids.shape, generator=generator) < 0.8)
    rand = chosen & ~masked & (torch.rand(input_ids.shape, generator=generator) < 0.5)
    out = input_ids.clone()
    out[masked] = mask_id
    out[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
    return out


def test_q2_80_10_10_accepts_correct_rules_on_every_seed():
    assert ex.q2.evaluate(_corrupt)[0]
    assert ex.q2.evaluate(_corrupt_two_draws)[0]


def test_q2_80_10_10_names_the_mistakes():
    def two_percent(input_ids, chosen, mask_id, vocab_size, generator=None):
        masked = chosen & (torch.rand(input_ids.shape, generator=generator) < 0.8)
        rand = chosen & ~masked & (torch.rand(input_ids.shape, generator=generator) < 0.1)
        out = input_ids.clone()
        out[masked] = mask_id
        out[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
        return out

    def in_place(input_ids, chosen, mask_id, vocab_size, generator=None):
        input_ids[chosen] = mask_id
        return input_ids

    def everywhere(input_ids, chosen, mask_id, vocab_size, generator=None):
        return _corrupt(input_ids, torch.ones_like(chosen), mask_id, vocab_size, generator)

    def all_mask(input_ids, chosen, mask_id, vocab_size, generator=None):
        return torch.where(chosen, torch.full_like(input_ids, mask_id), input_ids)

    def bad_ids(input_ids, chosen, mask_id, vocab_size, generator=None):
        out = _corrupt(input_ids, chosen, mask_id, vocab_size, generator)
        out[chosen & (out != mask_id) & (out != input_ids)] = vocab_size + 3
        return out

    for fn, words in ((two_percent, "half of those"), (in_place, "in place"), (everywhere, "not chosen"),
                      (all_mask, "80 %"), (bad_ids, "valid token ids")):
        ok, msg = ex.q2.evaluate(fn)
        assert not ok and words in msg, (fn.__name__, msg)
    ok, msg = ex.q2.evaluate(lambda *args: [1, 2, 3])
    assert not ok and "tensor of the shape" in msg


# ----------------------------------------------------------------- q3
def _make_pair(documents, d, i, rng):
    if rng.random() < 0.5:
        return documents[d][i], documents[d][i + 1], IS_NEXT
    other = rng.choice([k for k in range(len(documents)) if k != d])
    return documents[d][i], rng.choice(documents[other]), NOT_NEXT


def test_q3_nsp_pair():
    assert ex.q3.evaluate(_make_pair)[0]

    def reversed_labels(documents, d, i, rng):
        a, b, label = _make_pair(documents, d, i, rng)
        return a, b, 1 - label

    def same_document(documents, d, i, rng):
        if rng.random() < 0.5:
            return documents[d][i], documents[d][i + 1], IS_NEXT
        return documents[d][i], rng.choice(documents[d][: i + 1]), NOT_NEXT

    def always_next(documents, d, i, rng):
        return documents[d][i], documents[d][i + 1], IS_NEXT

    def only_first_other(documents, d, i, rng):
        if rng.random() < 0.5:
            return documents[d][i], documents[d][i + 1], IS_NEXT
        other = 0 if d != 0 else 1
        return documents[d][i], rng.choice(documents[other]), NOT_NEXT

    for fn, words in ((reversed_labels, "convention"), (same_document, "another* document"),
                      (always_next, "50 %"), (only_first_other, "any other document")):
        ok, msg = ex.q3.evaluate(fn)
        assert not ok and words in msg, (fn.__name__, msg)
    ok, msg = ex.q3.evaluate(lambda documents, d, i, rng: (documents[d][i], documents[d][i + 1]))
    assert not ok and "(sentence_a, sentence_b, label)" in msg
    ok, msg = ex.q3.evaluate(lambda documents, d, i, rng: (documents[d][i], documents[d][i + 1], "IsNext"))
    assert not ok and "0 or 1" in msg


# ----------------------------------------------------------------- q4
def _q4(only, both, conclusion=None):
    from scipy import stats

    diffs = [b - o for b, o in zip(both, only)]
    mean = sum(diffs) / len(diffs)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    half = stats.t.ppf(0.975, len(diffs) - 1) * se
    right = "A" if mean + half < 0 else "B" if mean - half > 0 else "C"
    return {"mlm_only": only, "mlm_nsp": both, "mean_difference": mean, "standard_error": se,
            "conclusion": conclusion or right}


@pytest.mark.parametrize("only, both, letter", [
    ([6.10, 6.20, 6.00], [6.12, 6.17, 6.03], "C"),
    ([6.10, 6.20, 6.00], [6.00, 6.11, 5.89], "A"),
    ([6.10, 6.20], [6.30, 6.41], "B"),
    ([6.2166, 6.1947], [6.2139, 6.1932], "C"),  # 3.5 standard errors, but 2 seeds: t = 12.7
])
def test_q4_accepts_every_consistent_answer(only, both, letter):
    answer = _q4(only, both)
    assert answer["conclusion"] == letter and ex.q4.evaluate(answer)[0]
    assert ex.q4.evaluate({**answer, "mlm_only": [torch.tensor(v) for v in only], "conclusion": letter.lower()})[0]


def test_q4_names_the_mistakes():
    good = _q4([6.10, 6.20, 6.00], [6.00, 6.11, 5.89])
    ok, msg = ex.q4.evaluate({**good, "mean_difference": -good["mean_difference"]})
    assert not ok and "wrong sign" in msg
    ok, msg = ex.q4.evaluate({**good, "standard_error": good["standard_error"] * math.sqrt(3)})
    assert not ok and "divides it by sqrt(n)" in msg
    ok, msg = ex.q4.evaluate({**good, "standard_error": 0.5})
    assert not ok and "ddof=1" in msg
    ok, msg = ex.q4.evaluate({**good, "mean_difference": 0.3})
    assert not ok and "mean over seeds" in msg
    ok, msg = ex.q4.evaluate({**good, "conclusion": "C"})
    assert not ok and "Student's t" in msg
    ok, msg = ex.q4.evaluate({**good, "conclusion": "Z"})
    assert not ok and "one of the letters" in msg
    ok, msg = ex.q4.evaluate({"mlm_only": [6.1]})
    assert not ok and "needs the keys" in msg
    ok, msg = ex.q4.evaluate(_q4([6.1, 6.2], [6.0, 6.1]) | {"mlm_nsp": [6.0]})
    assert not ok and "at least two" in msg
    ok, msg = ex.q4.evaluate(_q4([61.0, 62.0], [60.0, 61.5]))
    assert not ok and "few nats" in msg
    ok, msg = ex.q4.evaluate([6.1, 6.0])
    assert not ok and "dict" in msg


# ----------------------------------------------------------------- q5
def test_q5_unigram_baseline():
    def right(train_ids, targets, vocab_size, special_ids):
        counts = torch.ones(vocab_size)
        for row in train_ids:
            for t in row:
                counts[t] += 1
        counts[list(special_ids)] = 0
        return -(counts / counts.sum()).log()[targets].mean()

    def in_bits(train_ids, targets, vocab_size, special_ids):
        return right(train_ids, targets, vocab_size, special_ids) / math.log(2)

    def keeps_specials(train_ids, targets, vocab_size, special_ids):
        counts = torch.ones(vocab_size)
        for row in train_ids:
            for t in row:
                counts[t] += 1
        return -(counts / counts.sum()).log()[targets].mean()

    def no_smoothing(train_ids, targets, vocab_size, special_ids):
        counts = torch.zeros(vocab_size)
        for row in train_ids:
            for t in row:
                counts[t] += 1
        counts[list(special_ids)] = 0
        return -(counts / counts.sum()).log()[targets].mean()

    assert ex.q5.evaluate(right)[0]
    for fn, words in ((in_bits, "bits"), (keeps_specials, "probability 0")):
        ok, msg = ex.q5.evaluate(fn)
        assert not ok and words in msg, (fn.__name__, msg)
    ok, msg = ex.q5.evaluate(no_smoothing)  # -log 0 = inf: not a finite number
    assert not ok and "finite" in msg
    ok, msg = ex.q5.evaluate(lambda *args: 5.0)
    assert not ok and "plus one" in msg


def test_every_exercise_has_hints():
    for q in (ex.q1, ex.q2, ex.q3, ex.q4, ex.q5):
        assert len(q.hints) >= 2 and all(len(h) > 40 for h in q.hints)
