"""Every check of chapter 02's exercises, with a correct and a wrong answer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ptcourse.exercises import ch02 as ex


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
    assert not ok and "function itself" in msg


# ----------------------------------------------------------------- q3
def test_q3_where_the_noise_hurts():
    good = {"noise on labelled images": 0.045, "noise on the pool only": 0.005}
    assert ex.q3.evaluate(good)[0]
    ok, msg = ex.q3.evaluate({"noise on labelled images": 0.005, "noise on the pool only": 0.045})
    assert not ok and "larger when the random labels sit" in msg
    ok, msg = ex.q3.evaluate({"noise on labelled images": -0.02, "noise on the pool only": -0.05})
    assert not ok and "should cost accuracy" in msg
    ok, msg = ex.q3.evaluate({"noise on labelled images": 4.5, "noise on the pool only": 0.5})
    assert not ok and "fraction" in msg
    ok, msg = ex.q3.evaluate({"labelled": 0.04})
    assert not ok and "keys" in msg
    ok, msg = ex.q3.evaluate([0.04, 0.0])
    assert not ok and "dict" in msg
