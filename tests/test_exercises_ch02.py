"""Every check of chapter 02's exercises, with a correct and a wrong answer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ptcourse.exercises import ch02 as ex
from ptcourse.exercises.core import NOT_WRITTEN
from test_exercises_ch01 import longest_shared_code  # tests/ is on sys.path under pytest


# ----------------------------------------------------------------- q1
def test_q1_optimal_uncertainty_weight(capsys):
    assert ex.q1.check((2.0, 1.0))
    assert ex.q1.check([torch.tensor(2.0), 1])
    assert "✅" in capsys.readouterr().out
    ok, msg = ex.q1.evaluate((0.5, 0.5))
    assert not ok and "task loss itself" in msg
    ok, msg = ex.q1.evaluate((math.log(0.5), 1.0))
    assert not ok and "optimal s" in msg
    ok, msg = ex.q1.evaluate((2.0, 2.0))
    assert not ok and "w_simple is right" in msg
    ok, msg = ex.q1.evaluate((1.0, 2.0))
    assert not ok and "swapped" in msg
    ok, msg = ex.q1.evaluate(2.0)
    assert not ok and "pair" in msg
    ok, msg = ex.q1.evaluate(("a", 1.0))
    assert not ok and "should be a number" in msg


# ----------------------------------------------------------------- q2
def correct_loss(outputs, y, columns, weights):
    total = torch.zeros(())
    for task, column in columns.items():
        labels = y[:, column]
        if (labels != -1).any():
            total = total + weights[task] * F.cross_entropy(outputs[task], labels, ignore_index=-1)
    return total


def nan_loss(outputs, y, columns, weights):  # forgets the empty-task case
    return sum(weights[t] * F.cross_entropy(outputs[t], y[:, c], ignore_index=-1) for t, c in columns.items())


def batch_mean_loss(outputs, y, columns, weights):  # divides by the batch size, not the labelled count
    total = torch.zeros(())
    for task, column in columns.items():
        labels = y[:, column]
        keep = labels != -1
        if keep.any():
            total = total + weights[task] * F.cross_entropy(outputs[task][keep], labels[keep], reduction="sum") / len(labels)
    return total


def unweighted_loss(outputs, y, columns, weights):
    return correct_loss(outputs, y, columns, {t: 1.0 for t in columns})


def test_q2_multitask_loss():
    assert ex.q2.evaluate(correct_loss)[0]
    ok, msg = ex.q2.evaluate(nan_loss)
    assert not ok and "NaN" in msg
    ok, msg = ex.q2.evaluate(batch_mean_loss)
    assert not ok and "batch size" in msg
    ok, msg = ex.q2.evaluate(unweighted_loss)
    assert not ok and "weights are ignored" in msg
    ok, msg = ex.q2.evaluate(lambda o, y, c, w: torch.tensor(1.0))
    assert not ok and "differs" in msg
    ok, msg = ex.q2.evaluate(lambda o, y, c, w: [1.0])
    assert not ok and "one-element tensor" in msg
    ok, msg = ex.q2.evaluate(correct_loss(*ex._q2_cases()[0][:4]))
    assert not ok and "pass multitask_loss itself" in msg


def test_q2_an_unfinished_stub_or_a_crash_gets_the_shared_message():
    def stub(outputs, y, columns, weights):
        raise NotImplementedError("Write your solution here")

    ok, msg = ex.q2.evaluate(stub)
    assert not ok and msg == NOT_WRITTEN
    ok, msg = ex.q2.evaluate(lambda o, y, c, w: o["missing task"])
    assert not ok and "multitask_loss raised KeyError" in msg


# ----------------------------------------------------------------- q3
def _q3_answer(no_noise, everywhere, labelled_only):
    accs = {"no noise": no_noise, "everywhere": everywhere, "labelled only": labelled_only}
    costs = {v: sum(a - b for a, b in zip(no_noise, accs[v])) / len(no_noise) for v in ("everywhere", "labelled only")}
    return accs, costs


def test_q3_accepts_every_correctly_computed_result():
    # whatever the seeds gave -- noise that hurts, helps or does nothing -- a correct computation passes
    for variant in ([0.85, 0.86, 0.88], [0.92, 0.91, 0.93], [0.90, 0.88, 0.91]):
        accs, costs = _q3_answer([0.90, 0.88, 0.91], variant, [0.87, 0.89, 0.90])
        ok, msg = ex.q3.evaluate((accs, costs))
        assert ok, msg
        assert "3 seeds" in msg and "±" in msg
    accs, costs = _q3_answer([0.9, 0.8], [0.85, 0.8], [0.9, 0.7])
    as_tensors = {k: [torch.tensor(a) for a in v] for k, v in accs.items()}  # tensors are fine too
    ok, msg = ex.q3.evaluate((as_tensors, {k: torch.tensor(v) for k, v in costs.items()}))
    assert ok, msg


def test_q3_rejects_wrong_costs_and_untrained_models():
    accs, costs = _q3_answer([0.90, 0.88, 0.91], [0.85, 0.86, 0.88], [0.87, 0.89, 0.90])
    ok, msg = ex.q3.evaluate((accs, {k: -v for k, v in costs.items()}))
    assert not ok and "sign" in msg
    ok, msg = ex.q3.evaluate((accs, {**costs, "labelled only": costs["labelled only"] + 0.01}))
    assert not ok and "does not match your accuracies" in msg
    accs, costs = _q3_answer([0.1, 0.12], [0.1, 0.1], [0.11, 0.09])
    ok, msg = ex.q3.evaluate((accs, costs))
    assert not ok and "below 0.4" in msg


def test_q3_explains_badly_shaped_answers():
    accs, costs = _q3_answer([0.90, 0.88, 0.91], [0.85, 0.86, 0.88], [0.87, 0.89, 0.90])
    ok, msg = ex.q3.evaluate(costs)
    assert not ok and "pair (accs, costs)" in msg
    ok, msg = ex.q3.evaluate(({"no noise": [0.9, 0.8]}, costs))
    assert not ok and "missing" in msg
    ok, msg = ex.q3.evaluate(({**accs, "everywhere": [0.85, 0.86]}, costs))
    assert not ok and "one accuracy per seed" in msg
    ok, msg = ex.q3.evaluate(({**accs, "everywhere": [85.0, 86.0, 88.0]}, costs))
    assert not ok and "fractions between 0 and 1" in msg
    ok, msg = ex.q3.evaluate((_q3_answer([0.9], [0.8], [0.85])))
    assert not ok and "at least two" in msg
    ok, msg = ex.q3.evaluate((accs, {"everywhere": 0.03}))
    assert not ok and "exactly the keys" in msg
    ok, msg = ex.q3.evaluate(({**accs, "no noise": 0.9}, costs))
    assert not ok and "one accuracy per seed" in msg


# ----------------------------------------------------------------- hints
def test_no_last_hint_spells_out_the_solution_code():
    longest = longest_shared_code(ex, "solutions/02_multi_task_solutions.ipynb")
    assert set(longest) == {"q1", "q2", "q3"}
    for name, shared in longest.items():
        assert len(shared) < 20, f"{name}'s last hint repeats the solution code {shared!r}"
