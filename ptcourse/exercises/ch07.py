"""Checks for the exercises of chapter 07 · Fine-tuning BERT for sentiment.

Usage (in ``exercises/07_finetuning_bert_exercises.ipynb``)::

    from ptcourse.exercises import ch07 as ex
    ex.q1.check(no_decay_groups)   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: build AdamW's parameter groups with no weight decay on biases and LayerNorm (a function)
- q2: the learning rates of layer-wise LR decay (a function)
- q3: the L2-SP penalty from scratch (a function)
- q4: gradient accumulation with micro-batches of different sizes (a function)
- q5: diagnose a fine-tuning run that forgot its pretraining (a small experiment)
"""

from __future__ import annotations

import math
from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, close, require_type, to_float

__all__ = ["q1", "q2", "q3", "q4", "q5", "tiny_bert"]


def tiny_bert(seed: int = 0, num_labels: int = 2):
    """A very small randomly initialised ``BertForSequenceClassification`` for the checks (chapter 07).

    Usage: ``model = tiny_bert()``
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16, num_labels=num_labels,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


# ----------------------------------------------------------------- q1
def _check_q1(answer: Any) -> tuple[bool, str]:
    model = tiny_bert()
    groups = call_answer(answer, model, 1e-3, 0.01, what="no_decay_groups")
    if not isinstance(groups, (list, tuple)) or not groups or not all(isinstance(g, dict) for g in groups):
        raise AnswerError("no_decay_groups should return a list of dicts, each with 'params' and 'weight_decay'.")
    names = {id(p): n for n, p in model.named_parameters()}
    decay_of: dict[str, float] = {}
    for g in groups:
        if "params" not in g or "weight_decay" not in g:
            raise AnswerError("every group needs the keys 'params' and 'weight_decay'.")
        for p in g["params"]:
            if id(p) not in names:
                raise AnswerError("a group holds a tensor that is not a parameter of the model passed in.")
            if names[id(p)] in decay_of:
                return False, f"{names[id(p)]} is in two groups; each parameter belongs to exactly one."
            decay_of[names[id(p)]] = to_float(g["weight_decay"], "weight_decay")
        if "lr" in g and not close(to_float(g["lr"], "lr"), 1e-3, rel=1e-9):
            return False, "a group's lr differs from the lr passed in."
    missing = [n for n in names.values() if n not in decay_of]
    if missing:
        return False, f"{len(missing)} parameter(s) are in no group, e.g. {missing[0]}; AdamW would never train them."
    params = dict(model.named_parameters())
    for name, wd in decay_of.items():
        flat = params[name].ndim < 2
        if flat and wd != 0:
            what = "a LayerNorm weight" if "LayerNorm" in name else "a bias"
            return False, f"{name} is {what}: a shift or scale, not a weight matrix; it should get weight_decay=0."
        if not flat and not close(wd, 0.01):
            return False, f"{name} is a weight matrix: it should get the weight_decay passed in."
    return True, "weight matrices decay; biases and LayerNorm weights do not."


q1 = Exercise(
    "q1",
    "AdamW's parameter groups: no decay on biases and LayerNorm",
    check=_check_q1,
    hints=[
        "Loop over model.named_parameters() and put each parameter in one of two lists.",
        "A bias and a LayerNorm weight have one dimension; weight matrices and embedding tables have two. "
        "Return two dicts for AdamW, each with its 'params', its 'weight_decay' and the 'lr'.",
    ],
)


# ----------------------------------------------------------------- q2
_Q2_CASES = ((4, 1e-3, 0.5), (6, 3e-4, 0.8), (1, 2e-5, 0.9), (3, 1e-3, 1.0))


def _check_q2(answer: Any) -> tuple[bool, str]:
    for n_groups, base_lr, decay in _Q2_CASES:
        got = call_answer(answer, n_groups, base_lr, decay, what="llrd_rates")
        if not isinstance(got, (list, tuple)) or len(got) != n_groups:
            raise AnswerError(f"llrd_rates({n_groups}, ...) should return a list of {n_groups} learning rates.")
        rates = [to_float(r, "each learning rate") for r in got]
        want = [base_lr * decay ** (n_groups - 1 - i) for i in range(n_groups)]
        if all(close(r, w, tol=0, rel=1e-9) for r, w in zip(rates, want)):
            continue
        if all(close(r, w, tol=0, rel=1e-9) for r, w in zip(rates, reversed(want))):
            return False, "the order is reversed: the list goes from the bottom (embeddings) to the top (head)."
        if all(close(r, w * decay, tol=0, rel=1e-9) for r, w in zip(rates, want)):
            return False, "every rate is one factor of decay too small: the top group trains at base_lr itself."
        return False, f"for {n_groups} groups, base_lr={base_lr} and decay={decay} the rates are not right yet."
    return True, "the top group trains at base_lr and each group below at decay times the one above."


q2 = Exercise(
    "q2",
    "The learning rates of layer-wise LR decay",
    check=_check_q2,
    hints=[
        "Group l (0 = bottom, n_groups - 1 = top) gets base_lr times decay raised to its distance from the top.",
        "The distance from the top of group l is n_groups - 1 - l.",
    ],
)


# ----------------------------------------------------------------- q3
def _check_q3(answer: Any) -> tuple[bool, str]:
    import torch

    from ptcourse.finetune import l2sp_penalty

    model = tiny_bert(1)
    reference = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("classifier")}
    alpha = 0.3
    head_sq = sum(p.detach().pow(2).sum().item() for n, p in model.named_parameters() if n not in reference)
    at_start = to_float(call_answer(answer, model, reference, alpha, what="l2sp"), "l2sp(...) at the start")
    if close(at_start, alpha * head_sq, rel=1e-4):
        return False, "the classifier head is new: it has no pretrained value, so it is not part of the penalty."
    if at_start != 0:
        return False, f"at the pretrained weights the penalty must be exactly 0, got {at_start:.3g}."
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    got = call_answer(answer, model, reference, alpha, what="l2sp")
    if not isinstance(got, torch.Tensor) or got.ndim != 0:
        raise AnswerError("l2sp should return a 0-dimensional tensor (so that it can be added to the loss).")
    want = l2sp_penalty(model, reference, alpha).item()
    if close(got.item(), want, tol=1e-6, rel=1e-4):
        model.zero_grad()
        if not got.requires_grad:
            return False, "the value is right but it carries no gradient: compute it from the parameters themselves."
        got.backward()
        name, p = next((n, p) for n, p in model.named_parameters() if n in reference)
        if not torch.allclose(p.grad, 2 * alpha * (p.detach() - reference[name]), atol=1e-6):
            return False, "the value is right but its gradient is not 2 * alpha * (theta - theta_pre)."
        return True, "alpha * ||theta_S - theta_S_pre||^2 over the shared parameters; the new head is free."
    if close(got.item(), math.sqrt(want / alpha) * alpha, rel=1e-4):
        return False, "use the squared distance, not the distance itself."
    return False, "compare each shared parameter with its pretrained value, square, sum, and multiply by alpha."


q3 = Exercise(
    "q3",
    "L2-SP from scratch",
    check=_check_q3,
    hints=[
        "Only the parameters whose names are in `reference` are shared with the pretrained model.",
        "For each shared parameter, square its element-wise difference from the pretrained value and add up "
        "every element; scale the total by alpha. Build it from the parameters themselves, not from .item().",
    ],
)


# ----------------------------------------------------------------- q4
def _q4_batches():
    import torch

    gen = torch.Generator().manual_seed(4)
    sizes = (5, 2, 3)
    return [{"input_ids": torch.randint(5, 50, (n, 6), generator=gen),
             "attention_mask": torch.ones(n, 6, dtype=torch.long),
             "labels": torch.randint(0, 2, (n,), generator=gen)} for n in sizes]


def _check_q4(answer: Any) -> tuple[bool, str]:
    import torch

    batches = _q4_batches()
    model = tiny_bert(3)
    model.zero_grad()
    call_answer(answer, model, batches, what="accumulate")
    grads = {n: p.grad for n, p in model.named_parameters()}
    if any(g is None for g in grads.values()):
        return False, "some parameters have no gradient after accumulate: call backward() on every micro-batch."
    reference = tiny_bert(3)
    whole = {k: torch.cat([b[k] for b in batches]) for k in batches[0]}
    reference(**whole).loss.backward()
    if all(torch.allclose(grads[n], p.grad, atol=1e-6, rtol=1e-4) for n, p in reference.named_parameters()):
        return True, "weighting each micro-batch's mean loss by its share of the examples gives the big batch's gradient."
    naive = tiny_bert(3)
    for b in batches:
        (naive(**b).loss / len(batches)).backward()
    if all(torch.allclose(grads[n], p.grad, atol=1e-6, rtol=1e-4) for n, p in naive.named_parameters()):
        return False, ("dividing by the number of micro-batches is right only when they are all the same size; "
                       "here they hold 5, 2 and 3 examples.")
    return False, "the accumulated gradient differs from the gradient of the mean loss over all 10 examples."


q4 = Exercise(
    "q4",
    "Gradient accumulation with micro-batches of different sizes",
    check=_check_q4,
    hints=[
        "Each micro-batch's loss is a mean over its own examples; the big batch's loss is a mean over all of them.",
        "Count the examples of all micro-batches first; then weight each micro-batch's loss by the share of "
        "the examples it holds (not by 1 / number of micro-batches) before its backward().",
    ],
)


# ----------------------------------------------------------------- q5
def _check_q5(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your results")
    if set(answer) != {"A", "B", "forgot"}:
        raise AnswerError("give a dict with the keys 'A', 'B' (each a pair (distance, mlm_loss_increase)) and 'forgot'.")
    runs = {}
    for key in ("A", "B"):
        pair = answer[key]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise AnswerError(f"answer[{key!r}] should be a pair (distance, mlm_loss_increase).")
        distance, increase = to_float(pair[0], f"the distance of run {key}"), to_float(pair[1], f"the increase of {key}")
        if distance <= 0:
            return False, f"run {key} did not move from the pretrained weights: was the L2SP snapshot taken after training?"
        runs[key] = (distance, increase)
    forgot = answer["forgot"]
    if forgot not in ("A", "B"):
        raise AnswerError("answer['forgot'] should be 'A' or 'B'.")
    (dist_a, inc_a), (dist_b, inc_b) = runs["A"], runs["B"]
    if not dist_b > dist_a:
        return False, ("run B (large constant learning rate) should move much further from the pretrained weights "
                       "than run A; check which run is which.")
    if not inc_b > inc_a:
        return False, "measure the MLM loss on held-out text before and after each run, with the same masks."
    if forgot != "B":
        return False, "your own numbers point at the other run: which one moved further and lost more of its MLM skill?"
    return True, (f"run B moved {dist_b / max(dist_a, 1e-12):.1f} times as far and its MLM loss rose by {inc_b:.2f} "
                  f"(run A: {inc_a:.2f}): a large constant learning rate overwrites what pretraining learned.")


q5 = Exercise(
    "q5",
    "Diagnose a run that forgot its pretraining",
    check=_check_q5,
    hints=[
        "reg.distance() of an L2SP created before training is ||theta - theta_pre|| after it.",
        "Forgetting shows as the masked-language-model loss on held-out text going up: graft the pretrained MLM head "
        "back on the fine-tuned encoder and compare with the loss before fine-tuning.",
    ],
)
