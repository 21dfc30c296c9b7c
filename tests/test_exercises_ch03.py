"""Every check of chapter 03's exercises, with a correct and a wrong answer."""

from __future__ import annotations

import torch

from ptcourse.exercises import ch03 as ex
from test_exercises_ch01 import longest_shared_code  # tests/ is on sys.path under pytest


# ----------------------------------------------------------------- q1
def test_q1_mse_reductions(capsys):
    assert ex.q1.check((39.2 / (8 * 784), 39.2 / 8))
    assert ex.q1.check([torch.tensor(0.00625), 4.9])
    assert "✅" in capsys.readouterr().out
    ok, msg = ex.q1.evaluate((39.2 / 784, 4.9))
    assert not ok and "all* elements" in msg
    ok, msg = ex.q1.evaluate((4.9, 0.00625))
    assert not ok and "swapped" in msg
    ok, msg = ex.q1.evaluate((0.00625, 39.2))
    assert not ok and "mse_mean is right" in msg
    ok, msg = ex.q1.evaluate((0.1, 4.9))
    assert not ok and "per_image is right" in msg
    ok, msg = ex.q1.evaluate(0.00625)
    assert not ok and "pair" in msg


# ----------------------------------------------------------------- q2
def test_q2_honest_protocol():
    assert ex.q2.evaluate({"B", "E", "F"})[0]
    assert ex.q2.evaluate(["b", "e", "f"])[0]
    assert ex.q2.evaluate("B, E, F")[0]
    ok, msg = ex.q2.evaluate({"A", "B", "E", "F"})
    assert not ok and "test images shape the model" in msg
    ok, msg = ex.q2.evaluate({"B", "C", "E", "F"})
    assert not ok and "test accuracy" in msg
    ok, msg = ex.q2.evaluate({"B", "D", "E", "F"})
    assert not ok and "'pretraining'" in msg
    ok, msg = ex.q2.evaluate({"B", "E"})
    assert not ok and "left out 1" in msg
    ok, msg = ex.q2.evaluate({"B", "Z"})
    assert not ok and "not one of the letters" in msg
    ok, msg = ex.q2.evaluate(3)
    assert not ok and "set of letters" in msg
    assert set(ex.PROCEDURES) == {"A", "B", "C", "D", "E", "F"}


# ----------------------------------------------------------------- q3
def test_q3_bottleneck_size():
    assert ex.q3.evaluate({4: 0.031, 32: 0.007})[0]
    assert ex.q3.evaluate({4: torch.tensor(0.031), 16: 0.012, 32: 0.007})[0]
    ok, msg = ex.q3.evaluate({4: 0.007, 32: 0.031})
    assert not ok and "4-number bottleneck" in msg
    ok, msg = ex.q3.evaluate({4: 3.1, 32: 0.7})
    assert not ok and "small positive" in msg
    ok, msg = ex.q3.evaluate({8: 0.02, 32: 0.007})
    assert not ok and "4 and 32" in msg
    ok, msg = ex.q3.evaluate({"four": 0.02})
    assert not ok and "latent sizes" in msg


# ----------------------------------------------------------------- q4
def test_q4_distance_from_pretrained():
    assert ex.q4.evaluate({1.0: 2.5, 0.01: 0.2})[0]
    assert ex.q4.evaluate({1: torch.tensor(2.5), 0.1: 1.0, 0.01: 0.2})[0]
    ok, msg = ex.q4.evaluate({1.0: 0.2, 0.01: 2.5})
    assert not ok and "closer to its pretrained" in msg
    ok, msg = ex.q4.evaluate({1.0: 0.0, 0.01: 0.0})
    assert not ok and "did not move" in msg
    ok, msg = ex.q4.evaluate({1.0: 1.0, 0.01: 1.0})
    assert not ok and "same amount" in msg
    ok, msg = ex.q4.evaluate({1.0: 1.0})
    assert not ok and "1.0 and 0.01" in msg
    ok, msg = ex.q4.evaluate({1.0: -1.0, 0.01: 1.0})
    assert not ok and "negative" in msg


# ----------------------------------------------------------------- hints
def test_no_last_hint_spells_out_the_solution_code():
    longest = longest_shared_code(ex, "solutions/03_autoencoder_pretraining_solutions.ipynb")
    assert set(longest) == {"q1", "q2", "q3", "q4"}
    for name, shared in longest.items():
        assert len(shared) < 20, f"{name}'s last hint repeats the solution code {shared!r}"
