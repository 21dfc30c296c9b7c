"""ptcourse.results: the chapters' headline numbers, saved for chapter 09."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ptcourse.results import load_results, record_result, results_file, summarise


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PTCOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PTCOURSE_PROFILE", "fast")


def test_record_then_load_gives_mean_std_and_profile():
    rec = record_result(3, "linear probe", "test accuracy", [0.5, 0.7], dataset="digits", seconds=2.0, device="cpu")
    assert rec["mean"] == pytest.approx(0.6) and rec["std"] == pytest.approx(math.sqrt(0.02))
    table = load_results()
    assert list(table["experiment"]) == ["linear probe"]
    assert table.loc[0, "profile"] == "fast" and table.loc[0, "seeds"] == 2
    assert "0.600 ± 0.141 (2 seeds)" in summarise(table).loc[0, "result"]


def test_recording_again_replaces_the_row_but_other_profiles_stay(monkeypatch):
    record_result(1, "cnn", "test accuracy", [0.8], dataset="digits", device="cpu")
    record_result(1, "cnn", "test accuracy", np.array([0.9, 0.92]), dataset="digits", device="cpu")
    monkeypatch.setenv("PTCOURSE_PROFILE", "standard")
    record_result(1, "cnn", "test accuracy", 0.95, dataset="mnist", device="cpu")
    table = load_results()
    assert sorted(table["profile"]) == ["fast", "standard"]
    assert load_results(profile="fast")["seeds"].tolist() == [2]


def test_no_results_is_an_empty_table():
    table = load_results()
    assert table.empty and "profile" in table.columns


def test_a_corrupt_file_is_moved_aside_not_fatal(capsys):
    path = results_file(5)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert load_results().empty
    assert "unreadable" in capsys.readouterr().out
    assert path.with_suffix(".corrupt.json").exists()
    record_result(5, "reversal", "token accuracy", [1.0], dataset="synthetic", device="cpu")
    assert json.loads(path.read_text())[0]["experiment"] == "reversal"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(chapter=100), ValueError, "chapter must be an int"),
        (dict(chapter=True), ValueError, "chapter must be an int"),
        (dict(experiment=" "), ValueError, "experiment must be a non-empty string"),
        (dict(metric=None), ValueError, "metric must be a non-empty string"),
        (dict(values=[]), ValueError, "values is empty"),
        (dict(values=[0.5, float("nan")]), ValueError, "finite number"),
        (dict(values="0.5"), TypeError, "values must be a number or a list"),
        (dict(values=[True]), ValueError, "finite number"),
        (dict(dataset=""), ValueError, "dataset must be a non-empty string"),
        (dict(seconds=-1), ValueError, "seconds must be a finite, non-negative number"),
            (dict(seconds=float("nan")), ValueError, "seconds must be a finite"),
            (dict(seconds=float("inf")), ValueError, "seconds must be a finite"),
        (dict(at={}), TypeError, "at must be None or a non-empty dict"),
        (dict(at={"k": float("inf")}), ValueError, "at must map names to finite numbers"),
    ],
)
def test_bad_input_is_rejected_clearly(kwargs, error, match):
    args = dict(chapter=1, experiment="cnn", metric="test accuracy", values=[0.9], dataset="digits")
    args.update(kwargs)
    with pytest.raises(error, match=match):
        record_result(args.pop("chapter"), args.pop("experiment"), args.pop("metric"), args.pop("values"), **args)


def test_points_of_a_curve_are_kept_apart():
    for k, acc in ((1, 0.6), (5, 0.8)):
        record_result(3, "linear probe", "test accuracy", [acc], dataset="digits", device="cpu",
                      at={"labels per class": k})
    table = load_results()
    assert [a["labels per class"] for a in table["at"]] == [1.0, 5.0]
