"""Checks for the exercises of chapter 06 · Pretraining BERT (MLM + NSP).

Usage (in ``exercises/06_bert_pretraining_exercises.ipynb``)::

    from ptcourse.exercises import ch06 as ex
    ex.q1.check(expected_masks)   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: the expected number of ``[MASK]`` tokens in a batch (a function)
- q2: the 80/10/10 rule (a function)
- q3: one next-sentence-prediction pair, with the library's label convention (a function)
- q4: MLM only vs MLM + NSP, paired over seeds (a small experiment)
- q5: the unigram baseline of the MLM loss (a function)
"""

from __future__ import annotations

import math
import random
from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, close, require_type, to_float

__all__ = ["CONCLUSIONS", "q1", "q2", "q3", "q4", "q5"]

_Z = 4.5  # binomial bounds at 4.5 standard deviations: a correct answer fails about once in 150,000 checks


def _within(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= _Z * math.sqrt(n * p * (1 - p)) + 1


# ----------------------------------------------------------------- q1
def _q1_cases():
    import torch

    g = torch.Generator().manual_seed(0)
    cases = []
    for rows, cols, vocab, p in ((4, 12, 2000, 0.15), (32, 64, 30522, 0.15), (8, 20, 500, 0.3)):
        ids = torch.randint(5, vocab, (rows, cols), generator=g)
        ids[:, 0], ids[:, -1] = 2, 3                                    # [CLS] ... [SEP]
        ids[rows // 2:, cols // 2:] = 0                                 # padding in half of the rows
        cases.append((ids, [0, 1, 2, 3, 4], vocab, p))
    return cases


def _check_q1(answer: Any) -> tuple[bool, str]:
    import torch

    for ids, special, vocab, p in _q1_cases():
        got = to_float(call_answer(answer, ids, special, vocab, p, what="expected_masks"), "expected_masks(...)")
        n = int((~torch.isin(ids, torch.tensor(special))).sum())
        exact, approx = n * p * (0.8 + 0.1 / vocab), n * p * 0.8
        if close(got, exact, rel=1e-6) or close(got, approx, rel=1e-6):
            continue
        n_all = ids.numel()
        if close(got, n_all * p * 0.8, rel=1e-3) or close(got, n_all * p * (0.8 + 0.1 / vocab), rel=1e-3):
            return False, "special tokens ([CLS], [SEP], [PAD]) are never chosen: count only the other positions."
        if close(got, n * p, rel=1e-3):
            return False, "that is the expected number of *chosen* positions; only a share of them become [MASK]."
        if close(got, n * 0.8, rel=1e-3):
            return False, "each candidate is chosen with probability p first; [MASK] is 80 % of the chosen ones."
        return False, f"for a batch of shape {tuple(ids.shape)} with vocabulary {vocab} and p = {p}, the value is off."
    return True, "E[#MASK] = 0.8 p N (plus 0.1 p N / V for random tokens that happen to be [MASK])."


q1 = Exercise(
    "q1",
    "How many [MASK] tokens?",
    check=_check_q1,
    hints=[
        "Count N, the positions that are not special tokens (torch.isin(input_ids, special_ids) finds the special ones).",
        "Each of the N positions is chosen with probability p, and a chosen one shows [MASK] 80 % of the time; "
        "expectations multiply.",
    ],
)


# ----------------------------------------------------------------- q2
def _check_q2(answer: Any) -> tuple[bool, str]:
    import torch

    g = torch.Generator().manual_seed(2)
    vocab, mask_id = 5000, 4
    ids = torch.randint(5, vocab, (200, 100), generator=g)
    chosen = torch.rand(ids.shape, generator=g) < 0.3
    before, chosen_before = ids.clone(), chosen.clone()
    out = call_answer(answer, ids, chosen, mask_id, vocab, torch.Generator().manual_seed(3), what="corrupt")
    if not isinstance(out, torch.Tensor) or out.shape != ids.shape:
        raise AnswerError(f"corrupt(...) should return a tensor of the shape of input_ids {tuple(ids.shape)}.")
    if not torch.equal(ids, before) or not torch.equal(chosen, chosen_before):
        return False, "corrupt modified its input in place; work on a copy (input_ids.clone()) and return it."
    if not torch.equal(out[~chosen], ids[~chosen]):
        return False, "positions that were not chosen must stay exactly as they are."
    n = int(chosen.sum())
    shown = out[chosen]
    n_mask = int((shown == mask_id).sum())
    n_kept = int((shown == ids[chosen]).sum())
    n_random = n - n_mask - n_kept
    if int(((shown < 0) | (shown >= vocab)).sum()):
        return False, "some random replacements are not valid token ids: draw them from range(vocab_size)."
    if not _within(n_mask, n, 0.8 + 0.1 / vocab):
        return False, f"{n_mask / n:.1%} of the chosen positions show [MASK]; the rule says 80 %."
    if _within(n_random, n, 0.02):
        return False, ("only about 2 % of the chosen positions got a random token: the 10 % is a share of all "
                       "chosen positions, i.e. half of those that did not become [MASK].")
    if not _within(n_random, n, 0.1 * (1 - 2 / vocab)):
        return False, f"{n_random / n:.1%} of the chosen positions got a random token; the rule says 10 %."
    if not _within(n_kept, n, 0.1 + 0.1 / vocab):
        return False, f"{n_kept / n:.1%} of the chosen positions kept their token; the rule says 10 %."
    return True, (f"of {n} chosen positions: {n_mask / n:.1%} [MASK], {n_random / n:.1%} random, "
                  f"{n_kept / n:.1%} unchanged.")


q2 = Exercise(
    "q2",
    "The 80/10/10 rule",
    check=_check_q2,
    hints=[
        "Draw one uniform number u per position: u < 0.8 means [MASK], 0.8 <= u < 0.9 a random token, else unchanged.",
        "Combine each of those with `chosen` (&), write into a clone, and draw the random ids with "
        "torch.randint(vocab_size, shape, generator=generator).",
    ],
)


# ----------------------------------------------------------------- q3
_DOCS = [[f"Document {d} says sentence {i}." for i in range(n)] for d, n in enumerate([6, 3, 9, 1, 4, 7])]


def _check_q3(answer: Any) -> tuple[bool, str]:
    where = {s: (d, i) for d, doc in enumerate(_DOCS) for i, s in enumerate(doc)}
    rng = random.Random(5)
    starts = [(d, i) for d, doc in enumerate(_DOCS) for i in range(len(doc) - 1)]
    labels, other_docs = [], set()
    for trial in range(2000):
        d, i = starts[trial % len(starts)]
        out = call_answer(answer, _DOCS, d, i, rng, what="make_pair")
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise AnswerError("make_pair should return a tuple (sentence_a, sentence_b, label).")
        a, b, label = out
        if isinstance(label, bool) or label not in (0, 1):
            raise AnswerError(f"the label should be 0 or 1, got {label!r}.")
        if a != _DOCS[d][i]:
            return False, "sentence A should be documents[d][i], the sentence you were given."
        if b not in where:
            return False, "sentence B should be a sentence of the documents."
        successor = where[b] == (d, i + 1)
        if label == 0 and not successor:
            if where[b][0] != d:
                return False, ("a pair labelled 0 has a B from another document: in BertForPreTraining, "
                               "0 means IsNext and 1 means random (check your convention).")
            return False, "a pair labelled 0 (IsNext) must have B = the sentence right after A."
        if label == 1:
            if successor:
                return False, "a pair labelled 1 (random) has the true successor as B: is the convention reversed?"
            if where[b][0] == d:
                return False, "a random B must come from *another* document, not from A's own document."
            other_docs.add(where[b][0])
        labels.append(label)
    if not _within(labels.count(0), len(labels), 0.5):
        return False, f"{labels.count(0) / len(labels):.1%} of the pairs are IsNext; it should be 50 %."
    if len(other_docs) < len(_DOCS) - 1:
        return False, "the random sentences should come from any other document, chosen at random."
    return True, "half true successors (label 0), half sentences from other documents (label 1)."


q3 = Exercise(
    "q3",
    "One NSP pair",
    check=_check_q3,
    hints=[
        "Flip a fair coin with rng.random() < 0.5; with IsNext, B is documents[d][i + 1].",
        "Otherwise pick another document uniformly (any index except d), then a random sentence of it; "
        "the library's label for IsNext is the smaller of the two labels.",
    ],
)


# ----------------------------------------------------------------- q4
CONCLUSIONS = {
    "A": "MLM + NSP gave a lower held-out MLM loss than MLM only (the 95 % confidence interval of the paired "
         "difference lies below 0).",
    "B": "MLM only gave a lower held-out MLM loss (the 95 % confidence interval lies above 0).",
    "C": "The 95 % confidence interval contains 0: these seeds cannot tell the two recipes apart.",
}


def _floats(values: Any, what: str) -> list[float]:
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise AnswerError(f"{what} should be a list of numbers, one per seed.")
    return [to_float(v, f"each value of {what}") for v in values]


def _check_q4(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your answer")
    needed = {"mlm_only", "mlm_nsp", "mean_difference", "standard_error", "conclusion"}
    if not needed <= set(answer):
        raise AnswerError(f"the dict needs the keys {sorted(needed)} (missing: {sorted(needed - set(answer))}).")
    only, both = _floats(answer["mlm_only"], "mlm_only"), _floats(answer["mlm_nsp"], "mlm_nsp")
    if len(only) != len(both) or len(only) < 2:
        raise AnswerError("give one held-out MLM loss per seed for each recipe, the same seeds, at least two.")
    if not all(0 < v < 20 for v in only + both):
        raise AnswerError("held-out MLM losses are positive numbers of nats, a few nats for this model.")
    diffs = [b - o for b, o in zip(both, only)]
    mean = sum(diffs) / len(diffs)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    got_mean = to_float(answer["mean_difference"], "mean_difference")
    got_se = to_float(answer["standard_error"], "standard_error")
    if close(got_mean, -mean, tol=1e-6, rel=1e-4):
        return False, "mean_difference has the wrong sign: take (MLM + NSP) - (MLM only), seed by seed."
    if not close(got_mean, mean, tol=1e-6, rel=1e-4):
        return False, "mean_difference should be the mean over seeds of (MLM + NSP loss) - (MLM-only loss)."
    if close(got_se, se * math.sqrt(len(diffs)), tol=1e-6, rel=1e-4):
        return False, "that is the standard deviation of the differences; the standard error divides it by sqrt(n)."
    if not close(got_se, se, tol=1e-6, rel=1e-4):
        return False, "standard_error: the sample standard deviation (ddof=1) of the paired differences over sqrt(n)."
    conclusion = str(answer["conclusion"]).strip().upper()
    if conclusion not in CONCLUSIONS:
        raise AnswerError(f"conclusion should be one of the letters {sorted(CONCLUSIONS)}.")
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(diffs) - 1)) * se
    right = "A" if mean + half < 0 else "B" if mean - half > 0 else "C"
    if conclusion != right:
        return False, ("your numbers are right, but check the conclusion: the interval is mean ± t * SE, with t "
                       "the 97.5 % quantile of Student's t with n - 1 degrees of freedom.")
    return True, (f"paired difference {mean:+.4f} nats, 95 % interval ± {half:.4f} over {len(diffs)} seeds: "
                  f"conclusion {right}.")


q4 = Exercise(
    "q4",
    "MLM only vs MLM + NSP",
    check=_check_q4,
    hints=[
        "Use the same seeds and the same data for both recipes; only nsp_weight changes (0.0 or 1.0).",
        "Differences d_s = loss_mlm_nsp[s] - loss_mlm_only[s]; standard error = std(d, ddof=1) / sqrt(n); "
        "the interval's half-width multiplies it by scipy.stats.t.ppf(0.975, n - 1).",
    ],
)


# ----------------------------------------------------------------- q5
def _unigram_reference(train_ids, targets, vocab_size, special_ids):
    import torch

    counts = torch.zeros(vocab_size, dtype=torch.float64)
    for row in train_ids:
        counts += torch.bincount(torch.as_tensor(row), minlength=vocab_size).double()
    counts += 1
    counts[list(special_ids)] = 0
    return float(-(counts / counts.sum()).log()[torch.as_tensor(targets)].mean())


def _check_q5(answer: Any) -> tuple[bool, str]:
    import torch

    g = torch.Generator().manual_seed(4)
    vocab, special = 40, [0, 1, 2, 3, 4]
    train = [torch.cat([torch.tensor([2]), torch.randint(5, 25, (n,), generator=g), torch.tensor([3, 0, 0])]).tolist()
             for n in (7, 12, 9, 15)]
    targets = torch.randint(5, vocab, (60,), generator=g)  # ids 25..39 never occur in training
    want = _unigram_reference(train, targets, vocab, special)
    got = to_float(call_answer(answer, train, targets, vocab, special, what="unigram_cross_entropy"),
                   "unigram_cross_entropy(...)")
    if close(got, want, rel=1e-5):
        return True, "add-one counts, special tokens at probability 0, mean of -ln p: the best context-free loss."
    if close(got, want / math.log(2), rel=1e-4):
        return False, "that is in bits; the model's loss is in nats (natural logarithm)."
    no_special_zero = _unigram_reference_keep_specials(train, targets, vocab)
    if close(got, no_special_zero, rel=1e-4):
        return False, "special tokens ([CLS], [SEP], [PAD]) are never targets: give them probability 0."
    return False, "estimate p(w) from the training counts plus one (special tokens excluded), then average -log p(target)."


def _unigram_reference_keep_specials(train_ids, targets, vocab_size):
    import torch

    counts = torch.zeros(vocab_size, dtype=torch.float64)
    for row in train_ids:
        counts += torch.bincount(torch.as_tensor(row), minlength=vocab_size).double()
    counts += 1
    return float(-(counts / counts.sum()).log()[torch.as_tensor(targets)].mean())


q5 = Exercise(
    "q5",
    "The unigram baseline",
    check=_check_q5,
    hints=[
        "torch.bincount(row, minlength=vocab_size) counts each id of a row; add one to every count so that no "
        "token has probability 0.",
        "Set the counts of the special ids to 0 before normalising; the answer is the mean of -log p over the targets.",
    ],
)
