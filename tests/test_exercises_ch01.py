"""Every check of chapter 01's exercises, with a correct and a wrong answer."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import torch

from ptcourse.exercises import ch01 as ex
from ptcourse.exercises.core import NOT_WRITTEN, Exercise

ROOT = Path(__file__).resolve().parents[1]


def longest_shared_code(module, solutions_path: str) -> dict[str, str]:
    """For each exercise, the longest piece of solution code (spaces and quote style ignored) in its last hint."""
    cells = json.loads((ROOT / solutions_path).read_text())["cells"]
    code, inside = [], False
    for cell in cells:
        for line in "".join(cell["source"]).splitlines() if cell["cell_type"] == "code" else []:
            if "# BEGIN SOLUTION" in line or "# END SOLUTION" in line:
                inside = "BEGIN" in line
            elif inside:
                code.append(line.split("#")[0])

    def norm(text: str) -> str:
        return re.sub(r"\s+", "", text).replace('"', "'")

    solution = norm("\n".join(code))
    found = {}
    for name in module.__all__:
        exercise = getattr(module, name)
        if isinstance(exercise, Exercise) and exercise.hints:
            hint = norm(exercise.hints[-1])
            match = difflib.SequenceMatcher(None, hint, solution, autojunk=False).find_longest_match(
                0, len(hint), 0, len(solution))
            found[name] = hint[match.a:match.a + match.size]
    return found


def _feedback(q, answer) -> tuple[bool, str]:
    return q.evaluate(answer)


# ----------------------------------------------------------------- q1
def test_q1_split_to_choose_the_epoch(capsys):
    assert ex.q1.check("validation")
    assert ex.q1.check("  The Validation set ")
    assert ex.q1.check("val")
    assert "✅" in capsys.readouterr().out
    ok, msg = _feedback(ex.q1, "test")
    assert not ok and "leakage" in msg
    ok, msg = _feedback(ex.q1, "training")
    assert not ok and "memorises" in msg
    ok, msg = _feedback(ex.q1, "banana")
    assert not ok and "name of one split" in msg
    ok, msg = _feedback(ex.q1, 3)
    assert not ok and "should be a str" in msg


# ----------------------------------------------------------------- q2 and q3
def _best():
    h = ex.example_history()
    epoch = int(h.loc[h["val_loss"].idxmin(), "epoch"])
    row = h[h["epoch"] == epoch].iloc[0]
    return h, epoch, float(row["train_acc"] - row["val_acc"])


def test_example_history_is_a_fit_style_frame_with_an_overfitting_run():
    h, epoch, gap = _best()
    assert list(h.columns) == ["epoch", "train_loss", "val_loss", "train_acc", "val_acc"]
    assert h["epoch"].tolist() == list(range(1, 21))
    assert h["train_loss"].is_monotonic_decreasing
    assert 3 < epoch < 18, "the validation loss should turn up well inside the run"
    assert int(h.loc[h["val_acc"].idxmax(), "epoch"]) != epoch, "q2's distractor needs a different epoch"
    assert 0.05 < gap < 0.3


def test_q2_epoch_to_keep():
    h, epoch, _ = _best()
    assert ex.q2.evaluate(epoch)[0]
    assert ex.q2.evaluate(torch.tensor(epoch))[0]
    ok, msg = _feedback(ex.q2, epoch - 1)
    assert not ok and "off by one" in msg
    ok, msg = _feedback(ex.q2, int(h.loc[h["val_acc"].idxmax(), "epoch"]))
    assert not ok and "highest validation accuracy" in msg
    ok, msg = _feedback(ex.q2, 20)
    assert not ok and "training loss" in msg
    ok, msg = _feedback(ex.q2, 99)
    assert not ok and "epochs 1 to 20" in msg
    ok, msg = _feedback(ex.q2, 7.5)
    assert not ok and "whole number" in msg


def test_q3_generalisation_gap():
    h, epoch, gap = _best()
    assert ex.q3.evaluate(gap)[0]
    assert ex.q3.evaluate(torch.tensor(gap))[0]
    ok, msg = _feedback(ex.q3, 100 * gap)
    assert not ok and "percentage points" in msg
    ok, msg = _feedback(ex.q3, -gap)
    assert not ok and "sign" in msg
    last = h.iloc[-1]
    ok, msg = _feedback(ex.q3, float(last["train_acc"] - last["val_acc"]))
    assert not ok and "last epoch" in msg
    ok, msg = _feedback(ex.q3, gap + 0.05)
    assert not ok and str(round(gap, 4)) not in msg, "feedback must not reveal the answer"
    ok, msg = _feedback(ex.q3, "0.1")
    assert not ok and "should be a number" in msg


# ----------------------------------------------------------------- q4
def good_split(y, val_fraction, seed):
    generator = torch.Generator().manual_seed(seed)
    train_parts, val_parts = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = round(val_fraction * len(idx))
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    return torch.cat(train_parts), torch.cat(val_parts)


def test_q4_accepts_a_correct_split(capsys):
    assert ex.q4.check(good_split)
    assert "✅" in capsys.readouterr().out

    def as_lists(y, f, seed):  # lists of ints are fine too
        a, b = good_split(y, f, seed)
        return a.tolist(), b.tolist()

    assert ex.q4.evaluate(as_lists)[0]


def test_q4_rejects_a_split_that_is_not_stratified():
    def random_split(y, f, seed):
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        n_val = round(f * len(y))
        return perm[n_val:], perm[:n_val]

    ok, msg = _feedback(ex.q4, random_split)
    assert not ok and "not stratified" in msg


def test_q4_rejects_overlap_missing_indices_and_seed_problems():
    def overlapping(y, f, seed):
        train, val = good_split(y, f, seed)
        return torch.cat([train, val[:1]]), val

    ok, msg = _feedback(ex.q4, overlapping)
    assert not ok and "both train and validation" in msg

    def dropping(y, f, seed):
        train, val = good_split(y, f, seed)
        return train[1:], val

    ok, msg = _feedback(ex.q4, dropping)
    assert not ok and "every index" in msg

    def ignores_seed(y, f, seed):
        return good_split(y, f, 0)

    ok, msg = _feedback(ex.q4, ignores_seed)
    assert not ok and "different seed gave the same split" in msg

    def unseeded(y, f, seed):
        return good_split(y, f, int(torch.randint(0, 10**6, ())))

    ok, msg = _feedback(ex.q4, unseeded)
    assert not ok and "same seed gave different splits" in msg


def test_q4_explains_wrong_shapes():
    ok, msg = _feedback(ex.q4, good_split(torch.arange(10) % 2, 0.5, 0))  # called, not passed
    assert not ok and "pass stratified_split itself" in msg
    ok, msg = _feedback(ex.q4, lambda y, f, seed: torch.arange(len(y)))
    assert not ok and "pair (train_idx, val_idx)" in msg
    ok, msg = _feedback(ex.q4, lambda y, f, seed: (torch.zeros(2, 2), torch.zeros(2)))
    assert not ok and "1-D tensor of indices" in msg


def test_q4_an_unfinished_stub_or_a_crash_gets_the_shared_message():
    def stub(y, val_fraction, seed):
        raise NotImplementedError("Write your solution here")

    ok, msg = _feedback(ex.q4, stub)
    assert not ok and msg == NOT_WRITTEN

    def crashes(y, val_fraction, seed):
        return y.nonexistent

    ok, msg = _feedback(ex.q4, crashes)
    assert not ok and "stratified_split raised AttributeError" in msg


# ----------------------------------------------------------------- q5
def _results(small=(1.0, 0.75), large=(1.0, 0.94)):
    return {
        2: {"train_acc": small[0], "val_acc": small[1]},
        10: {"train_acc": 1.0, "val_acc": 0.88},
        50: {"train_acc": large[0], "val_acc": large[1]},
    }


def test_q5_accepts_a_plausible_experiment(capsys):
    assert ex.q5.check(_results())
    assert "gap is 0.25" in capsys.readouterr().out


def test_q5_rejects_results_without_the_effect():
    ok, msg = _feedback(ex.q5, _results(small=(0.6, 0.55)))
    assert not ok and "train longer" in msg
    ok, msg = _feedback(ex.q5, _results(small=(1.0, 0.92), large=(1.0, 0.94)))
    assert not ok and "clearly improve" in msg
    ok, msg = _feedback(ex.q5, _results(large=(0.3, 0.3)))
    assert not ok and "validation accuracy is only" in msg
    ok, msg = _feedback(ex.q5, _results(small=(0.9, 0.76), large=(1.0, 0.88)))
    assert not ok and "gap should be clearly larger" in msg


def test_q5_explains_badly_shaped_results():
    ok, msg = _feedback(ex.q5, [0.9, 0.8])
    assert not ok and "should be a dict" in msg
    ok, msg = _feedback(ex.q5, {2: {"train_acc": 1.0, "val_acc": 0.7}})
    assert not ok and "at least 3 values of k" in msg
    bad = _results()
    bad[10] = {"train": 1.0}
    ok, msg = _feedback(ex.q5, bad)
    assert not ok and "'train_acc' and 'val_acc'" in msg
    bad = _results()
    bad[10] = {"train_acc": 100.0, "val_acc": 88.0}
    ok, msg = _feedback(ex.q5, bad)
    assert not ok and "fractions between 0 and 1" in msg
    narrow = {20: _results()[2], 30: _results()[10], 50: _results()[50]}
    ok, msg = _feedback(ex.q5, narrow)
    assert not ok and "k of 5 or fewer" in msg


# ----------------------------------------------------------------- hints
def test_no_last_hint_spells_out_the_solution_code():
    longest = longest_shared_code(ex, "solutions/01_single_task_solutions.ipynb")
    assert longest, "every exercise should have hints"
    for name, shared in longest.items():
        assert len(shared) < 20, f"{name}'s last hint repeats the solution code {shared!r}"
