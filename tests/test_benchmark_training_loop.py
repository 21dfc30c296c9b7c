"""The training-loop benchmark runs end to end, and its statistics are right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "training_loop.py"


def load_script():
    spec = importlib.util.spec_from_file_location("training_loop", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_median_and_spread():
    bench = load_script()
    stats = bench.median_and_spread([0.9, 1.0, 1.1, 1.0, 0.95])
    assert stats["median"] == 1.0
    assert stats["q1"] == pytest.approx(np.percentile([0.9, 1.0, 1.1, 1.0, 0.95], 25))
    assert 0.9 <= stats["ci_low"] <= stats["median"] <= stats["ci_high"] <= 1.1


def test_the_benchmark_runs_paired_and_interleaved(capsys):
    bench = load_script()
    results = bench.main(["--pairs", "2", "--seconds", "0.01", "--threads", "1"])
    out = capsys.readouterr().out
    assert "pair  1 (raw first)" in out and "pair  2 (fit first)" in out and "fit/raw (1 thread) =" in out
    assert len(results) == 1 and results[0]["median"] > 0
