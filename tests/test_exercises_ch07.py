"""Every check of chapter 07's exercises, with correct and wrong answers."""

from __future__ import annotations

import torch

from ptcourse.exercises import ch07 as ex
from ptcourse.finetune import layerwise_lr_decay, param_groups


# ----------------------------------------------------------------- q1
def good_groups(model, lr, weight_decay):
    decay = [p for p in model.parameters() if p.ndim >= 2]
    flat = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr}, {"params": flat, "weight_decay": 0.0, "lr": lr}]


def by_name_groups(model, lr, weight_decay):  # the usual Hugging Face recipe, also right
    no_decay = ("bias", "LayerNorm.weight")
    return [{"params": [p for n, p in model.named_parameters() if not any(s in n for s in no_decay)],
             "weight_decay": weight_decay},
            {"params": [p for n, p in model.named_parameters() if any(s in n for s in no_decay)],
             "weight_decay": 0.0}]


def test_q1_no_decay_groups(capsys):
    assert ex.q1.check(good_groups)
    assert ex.q1.check(by_name_groups)
    assert ex.q1.check(lambda m, lr, wd: param_groups(m, {}, default_lr=lr, weight_decay=wd))
    assert "✅" in capsys.readouterr().out

    def bias_only(model, lr, weight_decay):
        return [{"params": [p for n, p in model.named_parameters() if "bias" not in n], "weight_decay": weight_decay},
                {"params": [p for n, p in model.named_parameters() if "bias" in n], "weight_decay": 0.0}]

    ok, msg = ex.q1.evaluate(bias_only)
    assert not ok and "LayerNorm weight" in msg
    ok, msg = ex.q1.evaluate(lambda m, lr, wd: [{"params": list(m.parameters()), "weight_decay": wd}])
    assert not ok and "should get weight_decay=0" in msg
    ok, msg = ex.q1.evaluate(lambda m, lr, wd: good_groups(m, lr, wd)[:1])
    assert not ok and "in no group" in msg
    ok, msg = ex.q1.evaluate(lambda m, lr, wd: good_groups(m, lr, wd) + good_groups(m, lr, wd)[:1])
    assert not ok and "two groups" in msg
    ok, msg = ex.q1.evaluate(lambda m, lr, wd: [{"params": list(m.parameters()), "weight_decay": 0.0}])
    assert not ok and "weight matrix" in msg
    ok, msg = ex.q1.evaluate(lambda m, lr, wd: [{"params": list(m.parameters())}])
    assert not ok and "'params' and 'weight_decay'" in msg
    ok, msg = ex.q1.evaluate(lambda m, lr, wd: list(m.parameters()))
    assert not ok and "list of dicts" in msg
    ok, msg = ex.q1.evaluate(good_groups(ex.tiny_bert(), 1e-3, 0.01))
    assert not ok and "the function" in msg


# ----------------------------------------------------------------- q2
def test_q2_llrd_rates():
    assert ex.q2.check(lambda n, lr, d: [lr * d ** (n - 1 - i) for i in range(n)])

    def from_ptcourse(n, lr, d):  # the same rates read back from ptcourse's parameter groups
        layers = [torch.nn.Linear(2, 2) for _ in range(n)]
        groups = layerwise_lr_decay(layers, base_lr=lr, decay=d, weight_decay=0.0)
        return [g["lr"] for g in groups if not g["name"].endswith("(no decay)")]  # one rate per layer

    assert ex.q2.check(from_ptcourse)
    ok, msg = ex.q2.evaluate(lambda n, lr, d: [lr * d ** i for i in range(n)])
    assert not ok and "reversed" in msg
    ok, msg = ex.q2.evaluate(lambda n, lr, d: [lr * d ** (n - i) for i in range(n)])
    assert not ok and "one factor of decay too small" in msg
    ok, msg = ex.q2.evaluate(lambda n, lr, d: [lr] * n)
    assert not ok and "not right yet" in msg
    ok, msg = ex.q2.evaluate(lambda n, lr, d: [lr])
    assert not ok and "list of 4 learning rates" in msg


# ----------------------------------------------------------------- q3
def l2sp(model, reference, alpha):
    total = sum(((p - reference[n]) ** 2).sum() for n, p in model.named_parameters() if n in reference)
    return alpha * total


def test_q3_l2sp():
    assert ex.q3.check(l2sp)
    ok, msg = ex.q3.evaluate(lambda m, ref, a: a * sum(((p - ref[n]) ** 2).sum() if n in ref else (p ** 2).sum()
                                                          for n, p in m.named_parameters()))
    assert not ok and "head is new" in msg
    ok, msg = ex.q3.evaluate(lambda m, ref, a: a * torch.sqrt(sum(((p - ref[n]) ** 2).sum()
                                                                  for n, p in m.named_parameters() if n in ref)))
    assert not ok and "squared distance" in msg
    ok, msg = ex.q3.evaluate(lambda m, ref, a: l2sp(m, ref, a).detach())
    assert not ok and "no gradient" in msg
    ok, msg = ex.q3.evaluate(lambda m, ref, a: torch.tensor([0.0]) + 1)
    assert not ok and "exactly 0" in msg
    ok, msg = ex.q3.evaluate(lambda m, ref, a: float(l2sp(m, ref, a).detach()))
    assert not ok and "0-dimensional tensor" in msg


# ----------------------------------------------------------------- q4
def accumulate(model, batches):
    total = sum(len(b["labels"]) for b in batches)
    for b in batches:
        (model(**b).loss * len(b["labels"]) / total).backward()


def test_q4_accumulation():
    assert ex.q4.check(accumulate)

    def naive(model, batches):
        for b in batches:
            (model(**b).loss / len(batches)).backward()

    ok, msg = ex.q4.evaluate(naive)
    assert not ok and "same size" in msg
    ok, msg = ex.q4.evaluate(lambda model, batches: model(**batches[0]).loss.backward())
    assert not ok and "differs" in msg
    ok, msg = ex.q4.evaluate(lambda model, batches: None)
    assert not ok and "no gradient" in msg


# ----------------------------------------------------------------- q5
def test_q5_diagnosis():
    assert ex.q5.check({"A": (0.8, 0.05), "B": (6.0, 1.4), "forgot": "B"})
    assert ex.q5.check({"A": [torch.tensor(0.8), -0.01], "B": (6.0, 1.4), "forgot": "B"})
    ok, msg = ex.q5.evaluate({"A": (0.8, 0.05), "B": (6.0, 1.4), "forgot": "A"})
    assert not ok and "other run" in msg
    ok, msg = ex.q5.evaluate({"A": (6.0, 1.4), "B": (0.8, 0.05), "forgot": "A"})
    assert not ok and "check which run is which" in msg
    ok, msg = ex.q5.evaluate({"A": (0.8, 0.5), "B": (6.0, 0.1), "forgot": "B"})
    assert not ok and "same masks" in msg
    ok, msg = ex.q5.evaluate({"A": (0.0, 0.0), "B": (6.0, 1.4), "forgot": "B"})
    assert not ok and "did not move" in msg
    ok, msg = ex.q5.evaluate({"A": (0.8, 0.05), "B": (6.0, 1.4)})
    assert not ok and "keys" in msg
    ok, msg = ex.q5.evaluate({"A": 0.8, "B": (6.0, 1.4), "forgot": "B"})
    assert not ok and "pair" in msg
    ok, msg = ex.q5.evaluate({"A": (0.8, 0.05), "B": (6.0, 1.4), "forgot": "C"})
    assert not ok and "'A' or 'B'" in msg
