"""ptcourse.analysis: the course-wide table by profile, the missing-chapter note, the figures."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ptcourse.analysis import (  # noqa: E402
    CHAPTER_NOTEBOOKS,
    curve_points,
    headline_table,
    missing_chapters,
    missing_report,
    plot_curves,
    plot_headlines,
    split_by_profile,
)
from ptcourse.results import load_results, record_result  # noqa: E402


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PTCOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PTCOURSE_PROFILE", "fast")


def _record_course(monkeypatch):
    """Chapters 1 and 3 in fast; 1, 2 and 3 in standard (2 only there); a one-seed result; curve points."""
    record_result(1, "CNN, all labels", "test accuracy", [0.95, 0.96, 0.94], dataset="digits", device="cpu", seconds=3)
    record_result(1, "CNN, all labels", "test loss", [0.2], dataset="digits", device="cpu")
    for k, accs in ((1, [0.55, 0.60, 0.58]), (10, [0.85, 0.88, 0.86])):
        record_result(3, "linear probe, pretrained", "test accuracy", accs, dataset="digits", device="cpu",
                      at={"labels per class": k})
        record_result(3, "linear probe, from scratch", "test accuracy", [a - 0.2 for a in accs], dataset="digits",
                      device="cpu", at={"labels per class": k})
    monkeypatch.setenv("PTCOURSE_PROFILE", "standard")
    record_result(1, "CNN, all labels", "test accuracy", [0.99, 0.985], dataset="mnist", device="cpu")
    record_result(2, "multi-task", "test accuracy", [0.97, 0.975], dataset="mnist", device="cpu")
    record_result(3, "linear probe, pretrained", "test accuracy", [0.7, 0.72], dataset="mnist", device="cpu",
                  at={"labels per class": 1})
    monkeypatch.setenv("PTCOURSE_PROFILE", "fast")
    return load_results()


def test_rows_of_another_profile_are_split_off_not_merged(monkeypatch):
    table = _record_course(monkeypatch)
    current, other = split_by_profile(table)
    assert set(current["profile"]) == {"fast"} and set(other["profile"]) == {"standard"}
    assert (len(current), len(other), len(table)) == (6, 3, 9)
    shown = headline_table(current)
    cnn = shown[(shown["experiment"] == "CNN, all labels") & (shown["metric"] == "test accuracy")]
    assert list(cnn["mean ± std"]) == ["0.950 ± 0.010"]  # the fast seeds only: 0.99 from standard not mixed in
    assert list(headline_table(other)["profile"]) == ["standard", "standard"]
    assert set(split_by_profile(table, "standard")[0]["dataset"]) == {"mnist"}


def test_missing_chapters_are_named_with_how_to_produce_them(monkeypatch):
    table = _record_course(monkeypatch)
    assert missing_chapters(table) == [2, 4, 5, 6, 7, 8]
    assert missing_chapters(table, "standard") == [4, 5, 6, 7, 8]
    report = missing_report(table)
    assert "No results yet in the fast profile from chapters 02, 04, 05, 06, 07, 08" in report
    assert f"notebooks/{CHAPTER_NOTEBOOKS[2]} top to bottom with PTCOURSE_PROFILE=fast" in report
    assert "chapter 02: run" in report and "it has standard-profile results, shown apart, not merged" in report
    assert "chapter 04: run notebooks/04_self_attention.ipynb" in report and "chapter 01" not in report
    assert missing_report(table, expected=[1, 3]).startswith("Every chapter from 01 to 03 has recorded results")


def test_an_empty_results_folder_reports_every_chapter_missing():
    table = load_results()
    assert missing_chapters(table) == list(CHAPTER_NOTEBOOKS)
    assert "from chapters 01, 02, 03, 04, 05, 06, 07, 08" in missing_report(table)
    assert headline_table(table).empty and curve_points(table).empty


def test_headline_table_gives_a_t_interval_and_none_for_one_seed(monkeypatch):
    current, _ = split_by_profile(_record_course(monkeypatch))
    shown = headline_table(current).set_index("metric")
    assert shown.loc["test accuracy", "95% CI (t)"] == "[0.925, 0.975]"  # 0.95 ± 4.303 * 0.01 / sqrt(3)
    assert shown.loc["test loss", "95% CI (t)"] == "one seed: unknown"
    assert shown.loc["test loss", "mean ± std"] == "0.200"
    assert "labels per class" not in " ".join(shown["experiment"])  # curve points are not headlines


def test_curve_points_keep_x_and_intervals(monkeypatch):
    current, _ = split_by_profile(_record_course(monkeypatch))
    points = curve_points(current)
    assert len(points) == 4 and set(points["x name"]) == {"labels per class"}
    pre = points[points["experiment"] == "linear probe, pretrained"]
    assert list(pre["x"]) == [1.0, 10.0]
    assert (pre["low"] < pre["mean"]).all() and (pre["mean"] < pre["high"]).all()


def test_figures_are_drawn_with_labelled_axes(monkeypatch):
    current, _ = split_by_profile(_record_course(monkeypatch))
    fig = plot_headlines(current)
    assert len(fig.axes) == 2  # one panel per metric
    assert all(ax.get_xlabel() for ax in fig.axes)
    fig2 = plot_curves(curve_points(current))
    ax = fig2.axes[0]
    assert ax.get_xlabel() == "labels per class" and "test accuracy" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 2
    plt.close("all")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: split_by_profile([1, 2]), TypeError, "expected the DataFrame from"),
        (lambda: split_by_profile(pd.DataFrame({"chapter": [1]})), ValueError, "lacks the columns"),
        (lambda: split_by_profile(load_results(), "quick"), ValueError, "profile must be one of"),
        (lambda: missing_report(load_results(), profile="FAST"), ValueError, "profile must be one of"),
        (lambda: plot_headlines(load_results()), ValueError, "no headline results to plot"),
        (lambda: plot_curves(curve_points(load_results())), ValueError, "no curve points to plot"),
        (lambda: plot_curves(load_results()), TypeError, "returned by curve_points"),
    ],
)
def test_bad_input_is_rejected_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _write(chapter, records):
    from ptcourse.results import results_file

    path = results_file(chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))


GOOD = {"chapter": 6, "experiment": "e", "metric": "m", "at": None, "profile": "fast", "dataset": "d",
        "mean": 0.5, "std": 0.1, "seeds": 2, "values": [0.4, 0.6]}


def test_malformed_records_are_skipped_with_a_notice_not_a_crash(capsys):
    record_result(1, "CNN", "test accuracy", [0.9, 0.92], dataset="digits", device="cpu")
    _write(4, "{not json")
    _write(5, [{"chapter": 5}])  # cut short
    _write(6, [{**GOOD, "values": None}, {**GOOD, "experiment": "f", "values": ["a", 1]}])
    _write(7, [{**GOOD, "chapter": 7, "at": "k=5"}, {**GOOD, "chapter": 7, "values": [0.4, float("nan")]}])
    table = load_results()
    capsys.readouterr()
    current, other = split_by_profile(table)
    notice = capsys.readouterr().out
    assert "[ptcourse] skipped 5 malformed record(s)" in notice and "chapter 5: no experiment" in notice
    assert list(current["chapter"]) == [1] and other.empty
    assert list(headline_table(table)["chapter"]) == [1] and curve_points(table).empty
    plot_headlines(table)
    plt.close("all")
    assert missing_chapters(table) == [2, 3, 4, 5, 6, 7, 8]  # malformed records do not count as results
    assert "chapter 05: run notebooks/05_transformer.ipynb" in missing_report(table)


def test_the_table_shows_what_the_values_say_not_a_hand_edited_mean():
    _write(6, [{**GOOD, "mean": 0.9, "std": 0.0, "seeds": 7}])
    shown = headline_table(load_results())
    assert list(shown["mean ± std"]) == ["0.500 ± 0.141"] and list(shown["seeds"]) == [2]


def test_curve_points_with_several_names_in_at_keep_the_first_as_x():
    record_result(1, "MLP", "val acc", [0.5, 0.6], dataset="digits", device="cpu", at={"epochs": 5, "width": 64})
    record_result(1, "MLP", "val acc", [0.7, 0.8], dataset="digits", device="cpu", at={"epochs": 10, "width": 64})
    record_result(1, "MLP", "val acc", [0.6], dataset="digits", device="cpu", at={"epochs": 10, "width": 8})
    points = curve_points(load_results())
    assert set(points["x name"]) == {"epochs"} and points["x"].notna().all()
    assert sorted(set(points["series"])) == ["MLP, width 64", "MLP, width 8"]
    fig = plot_curves(points)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["MLP, width 64", "MLP, width 8"]
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white" and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in hollow] == [[10.0]]  # the one-seed point is drawn hollow
    plt.close("all")


def test_curves_on_different_datasets_are_drawn_in_separate_labelled_panels():
    record_result(1, "CNN", "test accuracy", [0.5, 0.6], dataset="mnist", device="cpu", at={"labels per class": 1})
    record_result(1, "CNN, digits", "test accuracy", [0.4, 0.5], dataset="digits", device="cpu",
                  at={"labels per class": 1})
    fig = plot_curves(curve_points(load_results()))
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_visible()) == ["chapter 01 (digits)", "chapter 01 (mnist)"]
    plt.close("all")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: missing_report(load_results(), expected=[]), ValueError, "non-empty list of chapter numbers"),
        (lambda: missing_report(load_results(), expected="12"), TypeError, "list of chapter numbers"),
        (lambda: missing_chapters(load_results(), expected=[1, 2.5]), ValueError, "chapter numbers from 0 to 99"),
        (lambda: missing_chapters(load_results(), expected=[True]), ValueError, "chapter numbers"),
        (lambda: missing_chapters(load_results(), expected=5), TypeError, "list of chapter numbers"),
    ],
)
def test_bad_expected_chapters_are_rejected_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_chapter_numbers_are_accepted():
    import numpy as np

    assert missing_chapters(load_results(), expected=np.array([3, 1])) == [1, 3]


def test_a_log_x_axis_is_labelled_with_the_measured_values():
    for k in (5, 20, 80):
        record_result(9, "MLP", "validation accuracy", [0.5, 0.6], dataset="digits", device="cpu",
                      at={"labels per class": k})
    ax = plot_curves(curve_points(load_results())).axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "20", "80"]
    plt.close("all")
