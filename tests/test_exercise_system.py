"""The exercise system: ptcourse.exercises.core, scripts/make_exercises.py, and the sync of
exercises/ with solutions/."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ptcourse.exercises.core import (
    AnswerError,
    Exercise,
    close,
    require_shape,
    require_type,
    to_float,
    to_int,
)

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "scripts" / "make_exercises.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_exercises"] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


mk = _load_script()


# ============================================================== core: Exercise
def _is_42(answer):
    return to_int(answer, "the answer") == 42, "compare with the question."


def test_check_prints_one_line_and_returns_bool(capsys):
    q = Exercise("q1", "The answer", check=_is_42, hints=["h1"])
    assert q.check(42) is True
    out = capsys.readouterr().out
    assert out.startswith("✅ q1 · The answer") and out.count("\n") == 1
    assert q.check(41) is False
    out = capsys.readouterr().out
    assert out.startswith("❌ q1 · The answer") and out.count("\n") == 1
    assert ".hint()" in out  # suggests a hint while some are left
    assert q.solved and q.attempts == 2


def test_check_never_tracebacks_on_a_bad_answer(capsys):
    q = Exercise("q1", "The answer", check=_is_42)
    assert q.check("forty-two") is False  # AnswerError from to_int
    assert "should be a number, got a str" in capsys.readouterr().out
    assert q.check([1, 2]) is False
    assert "should be a number" in capsys.readouterr().out

    def crashes(answer):
        return answer.shape[3] == 1, ""

    q2 = Exercise("q2", "Crash", check=crashes)
    assert q2.check(3) is False
    out = capsys.readouterr().out
    assert "could not be checked (AttributeError" in out and "Traceback" not in out


def test_check_explains_missing_answers(capsys):
    q = Exercise("q1", "The answer", check=_is_42)
    assert q.check(None) is False
    assert "no answer yet" in capsys.readouterr().out.lower()
    assert q.check(...) is False

    def not_written(answer):
        raise NotImplementedError("Write your solution here")

    assert Exercise("q2", "t", check=not_written).check(lambda: 0) is False
    assert "not written yet" in capsys.readouterr().out.lower()


def test_check_accepts_a_bare_bool_and_gives_default_feedback(capsys):
    q = Exercise("q1", "Bool", check=lambda a: a == "yes")
    assert q.check("yes") and not q.check("no")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(len(line) > len("❌ q1 · Bool — not yet. ") for line in lines)


def test_a_malformed_check_is_an_author_error():
    q = Exercise("q1", "Bad", check=lambda a: (True, "x", "extra"))
    with pytest.raises(TypeError, match="must return"):
        q.check(1)
    with pytest.raises(TypeError, match="must be a function"):
        Exercise("q1", "Bad", check="not callable")


def test_hints_progress_then_say_there_are_no_more(capsys):
    q = Exercise("q3", "Hints", check=_is_42, hints=["first", "second"])
    q.hint()
    q.hint()
    q.hint()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "💡 Hint 1/2 for q3: first"
    assert lines[1] == "💡 Hint 2/2 for q3: second"
    assert "No more hints for q3" in lines[2]
    q.check(0)
    assert ".hint()" not in capsys.readouterr().out  # none left to suggest
    Exercise("q4", "None", check=_is_42).hint()
    assert "no hints" in capsys.readouterr().out
    q.reset()
    q.hint()
    assert "Hint 1/2" in capsys.readouterr().out


def test_repr_names_the_exercise_and_how_to_use_it():
    q = Exercise("q1", "The answer", check=_is_42, hints="one hint")
    text = repr(q)
    assert "q1" in text and "The answer" in text and "1 hint," in text and ".check(answer)" in text


def test_importing_the_package_does_not_import_torch():
    code = "import sys, ptcourse.exercises; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ============================================================== core: helpers
def test_to_float_accepts_numbers_and_one_element_tensors():
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    assert to_float(3) == 3.0
    assert to_float(np.float32(0.5)) == 0.5
    assert to_float(torch.tensor(0.25)) == 0.25
    assert to_float(torch.tensor([0.25])) == 0.25
    for bad, message in [
        (True, "got a bool"),
        ("0.5", "got a str"),
        (torch.ones(3), "single number, got a Tensor of shape (3,)"),
        (float("nan"), "finite"),
    ]:
        with pytest.raises(AnswerError, match=re.escape(message)):
            to_float(bad)


def test_to_int_require_type_and_require_shape():
    torch = pytest.importorskip("torch")
    assert to_int(3.0) == 3
    with pytest.raises(AnswerError, match="whole number"):
        to_int(2.5)
    assert require_type("x", str) == "x"
    with pytest.raises(AnswerError, match="should be a dict or list, got an int"):
        require_type(3, (dict, list))
    x = torch.zeros(2, 3)
    assert require_shape(x, (None, 3)) is x
    with pytest.raises(AnswerError, match=re.escape("shape (any, 4), got shape (2, 3)")):
        require_shape(x, (None, 4))
    with pytest.raises(AnswerError, match="tensor or array"):
        require_shape([1, 2], (2,))


def test_close_for_numbers_and_arrays():
    torch = pytest.importorskip("torch")
    assert close(1.0, 1.0 + 1e-9)
    assert not close(1.0, 1.1, tol=0.01)
    assert close(100.0, 101.0, rel=0.02)
    assert close(torch.ones(3), [1.0, 1.0, 1.0 + 1e-8])
    assert not close(torch.ones(3), torch.ones(4))
    assert not close(torch.ones(2), torch.tensor([1.0, 2.0]), tol=0.5)


# ============================================================== generator: regions
def test_code_region_keeps_indentation_and_surrounding_lines():
    src = (
        "def f(x):\n"
        "    y = 1\n"
        "    # BEGIN SOLUTION\n"
        "    return x + y\n"
        "    # END SOLUTION\n"
        "\n"
        "# BEGIN SOLUTION\n"
        "z = f(2)\n"
        "# END SOLUTION\n"
        "print(z)"
    )
    out, n = mk.replace_code_regions(src)
    assert n == 2
    assert out == (
        "def f(x):\n"
        "    y = 1\n"
        "    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Write your solution here")\n'
        "\n"
        "# YOUR CODE HERE\n"
        'raise NotImplementedError("Write your solution here")\n'
        "print(z)"
    )
    compile(out, "<exercise>", "exec")  # still valid Python


def test_markdown_region_is_replaced():
    src = "Why?\n\n<!-- BEGIN SOLUTION -->\nBecause.\n\nReally.\n<!-- END SOLUTION -->\n\nNext."
    out, n = mk.replace_markdown_regions(src)
    assert n == 1
    assert out == "Why?\n\n_Write your answer here._\n\nNext."


@pytest.mark.parametrize(
    "src, message",
    [
        ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n# END SOLUTION\n", "without a '# BEGIN SOLUTION'"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx\n# END SOLUTION\n# END SOLUTION", "cannot be nested"),
        ("# BEGIN SOLUTION q1\nx = 1\n# END SOLUTION\n", "malformed solution marker"),
        ("<!-- BEGIN SOLUTION -->\nx = 1\n<!-- END SOLUTION -->", "HTML solution marker in a code cell"),
    ],
)
def test_bad_code_markers_are_clear_errors(src, message):
    with pytest.raises(mk.MarkerError, match=re.escape(message)):
        mk.replace_code_regions(src, "nb.ipynb, cell 3 (code)")


@pytest.mark.parametrize(
    "src, message",
    [
        ("<!-- BEGIN SOLUTION -->\ntext", "never closed"),
        ("text\n<!-- END SOLUTION -->", "without a '<!-- BEGIN SOLUTION -->'"),
        ("# BEGIN SOLUTION\ntext\n# END SOLUTION", "in a markdown cell"),
        ("<!-- BEGIN SOLUTION --> inline\ntext", "malformed solution marker"),
    ],
)
def test_bad_markdown_markers_are_clear_errors(src, message):
    with pytest.raises(mk.MarkerError, match=re.escape(message)):
        mk.replace_markdown_regions(src, "nb.ipynb, cell 2 (markdown)")


@pytest.mark.parametrize(
    "title, expected",
    [
        ("# 01 · Single-task learning — exercises with solutions", "# 01 · Single-task learning — exercises"),
        ("# 02 · Multi-task learning: solutions", "# 02 · Multi-task learning — exercises"),
        ("# 03 · Autoencoder pretraining (solutions)", "# 03 · Autoencoder pretraining — exercises"),
        ("# Solutions: 04 · Self-attention", "# 04 · Self-attention — exercises"),
        ("# 05 · The Transformer", "# 05 · The Transformer — exercises"),
    ],
)
def test_exercise_title(title, expected):
    assert mk.exercise_title(title) == expected


# ============================================================== generator: notebooks
MARKER = "<!-- launch-badges: generated by scripts/sync_links.py; do not edit by hand -->"


def _badges(path: str) -> str:
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/ptcourse/ptcourse/blob/main/{path}) "
        f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]"
        f"(https://mybinder.org/v2/gh/ptcourse/ptcourse/main?urlpath=lab/tree/{path})"
    )


def _solution_notebook() -> dict:
    return {
        "cells": [
            {
                "cell_type": "markdown",
                "id": "intro",
                "metadata": {},
                "source": [
                    "# 09 · Toy — exercises with solutions\n",
                    "\n",
                    MARKER + "\n",
                    _badges("solutions/09_toy_solutions.ipynb") + "\n",
                    "\n",
                    "Intro text.",
                ],
            },
            {
                "cell_type": "code",
                "execution_count": 7,
                "id": "answer",
                "metadata": {"tags": ["keep-me"]},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["42\n"]}],
                "source": ["def f():\n", "    # BEGIN SOLUTION\n", "    return 42\n", "    # END SOLUTION\n"],
            },
            {
                "cell_type": "code",
                "execution_count": 8,
                "id": "check",
                "metadata": {},
                "outputs": [],
                "source": "assert ex.q1.check(f())",
            },
            {
                "cell_type": "markdown",
                "id": "why",
                "metadata": {},
                "source": "<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->",
            },
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_notebook_is_stripped_retitled_and_keeps_ids_and_metadata():
    nb = _solution_notebook()
    before = copy.deepcopy(nb)
    ex = mk.make_exercise_notebook(nb, "09_toy")
    assert nb == before, "the solution notebook must not be modified"
    cells = ex["cells"]
    assert [c["id"] for c in cells] == ["intro", "answer", "check", "why"]
    assert ex["metadata"] == nb["metadata"] and ex["nbformat"] == 4 and ex["nbformat_minor"] == 5
    for cell in cells:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert cells[1]["metadata"] == {"tags": ["keep-me"]}
    assert "".join(cells[1]["source"]) == (
        'def f():\n    # YOUR CODE HERE\n    raise NotImplementedError("Write your solution here")\n'
    )
    assert "".join(cells[2]["source"]) == "assert ex.q1.check(f())"
    assert "".join(cells[3]["source"]) == "_Write your answer here._"
    intro = "".join(cells[0]["source"]).split("\n")
    assert intro[0] == "# 09 · Toy — exercises"
    assert intro[2] == MARKER
    assert intro[3] == _badges("exercises/09_toy_exercises.ipynb"), "badges must launch the exercise notebook"
    assert "Exercise version" in intro[5] and "solutions/09_toy_solutions.ipynb" in intro[5]
    assert intro[-1] == "Intro text."


def test_a_notebook_without_regions_is_an_error():
    nb = _solution_notebook()
    del nb["cells"][1:]
    with pytest.raises(mk.MarkerError, match="no solution region"):
        mk.make_exercise_notebook(nb, "09_toy")


def _write(folder: Path, name: str, nb: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_main_writes_deterministically_checks_and_deletes_stale(tmp_path, capsys):
    sol, exe = tmp_path / "solutions", tmp_path / "exercises"
    _write(sol, "09_toy_solutions.ipynb", _solution_notebook())
    args = ["--solutions", str(sol), "--exercises", str(exe)]

    assert mk.main(args + ["--check"]) == 1  # missing
    assert "missing" in capsys.readouterr().out
    assert not exe.exists(), "--check must not write"

    assert mk.main(args) == 0
    target = exe / "09_toy_exercises.ipynb"
    first = target.read_bytes()
    assert mk.main(args) == 0
    assert target.read_bytes() == first, "the output must be byte-identical on rerun"
    assert mk.main(args + ["--check"]) == 0
    nb = json.loads(first)
    assert nb["cells"][1]["outputs"] == []

    target.write_text(first.decode().replace("YOUR CODE HERE", "edited by hand"), encoding="utf-8")
    stale = _write(exe, "08_old_exercises.ipynb", _solution_notebook())
    capsys.readouterr()
    assert mk.main(args + ["--check"]) == 1
    out = capsys.readouterr().out
    assert "09_toy_exercises.ipynb: out of date" in out and "08_old_exercises.ipynb: stale" in out
    assert stale.exists(), "--check must not delete"

    assert mk.main(args) == 0
    assert not stale.exists()
    assert target.read_bytes() == first


def test_main_reports_marker_errors_with_file_and_cell(tmp_path, capsys):
    nb = _solution_notebook()
    nb["cells"][1]["source"] = ["# BEGIN SOLUTION\n", "x = 1\n"]
    _write(tmp_path / "solutions", "09_toy_solutions.ipynb", nb)
    code = mk.main(["--solutions", str(tmp_path / "solutions"), "--exercises", str(tmp_path / "exercises")])
    assert code == 2
    err = capsys.readouterr().err
    assert "09_toy_solutions.ipynb, cell 2 (code), line 1" in err and "never closed" in err
    assert not (tmp_path / "exercises" / "09_toy_exercises.ipynb").exists()


# ============================================================== the repository
def test_exercises_are_in_sync_with_solutions(capsys):
    code = mk.main(["--check"])
    assert code == 0, "exercises/ is out of date; run `python scripts/make_exercises.py`\n" + capsys.readouterr().out


def _chapter_modules():
    folder = ROOT / "ptcourse" / "exercises"
    return sorted(p.stem for p in folder.glob("ch[0-9][0-9].py"))


@pytest.mark.parametrize("name", _chapter_modules())
def test_chapter_modules_follow_the_contract(name):
    module = importlib.import_module(f"ptcourse.exercises.{name}")
    exercises = {k: v for k, v in vars(module).items() if re.fullmatch(r"q\d+", k)}
    assert len(exercises) >= 3, f"{name} should have at least three exercises"
    for key, q in exercises.items():
        assert isinstance(q, Exercise), f"{name}.{key} is not an Exercise"
        assert q.name == key, f"{name}.{key} is named {q.name!r}"
        assert q.title.strip() and q.hints, f"{name}.{key} needs a title and at least one hint"
    solutions = sorted((ROOT / "solutions").glob(f"{name[2:]}_*_solutions.ipynb"))
    assert solutions, f"no solutions/{name[2:]}_*_solutions.ipynb uses {name}"
    nb = json.loads(solutions[0].read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert f"ptcourse.exercises import {name}" in code
    for key in exercises:
        assert re.search(rf"\bassert\s+\w+\.{key}\.check\(", code), f"{solutions[0].name} never asserts {key}.check"


def test_call_answer_gives_one_message_per_failure_kind():
    from ptcourse.exercises.core import NOT_WRITTEN, call_answer

    def stub(x):
        raise NotImplementedError("Write your solution here")

    with pytest.raises(AnswerError, match=re.escape(NOT_WRITTEN)):
        call_answer(stub, 1, what="split_heads")
    with pytest.raises(AnswerError, match="pass split_heads itself"):
        call_answer(3, what="split_heads")
    with pytest.raises(AnswerError, match="split_heads raised ZeroDivisionError"):
        call_answer(lambda x: 1 / 0, 1, what="split_heads")
    assert call_answer(lambda x: x + 1, 1) == 2
