#!/usr/bin/env python
"""Generate the exercise notebooks from the solution notebooks.

    python scripts/make_exercises.py           # (re)write exercises/*.ipynb
    python scripts/make_exercises.py --check   # exit 1 listing out-of-date files; writes nothing

Every ``solutions/NN_topic_solutions.ipynb`` becomes ``exercises/NN_topic_exercises.ipynb``:

- in code cells, the lines from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` (markers
  included) become, at the indentation of the ``BEGIN`` marker::

      # YOUR CODE HERE
      raise NotImplementedError("Write your solution here")

- in markdown cells, the lines from ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->``
  become ``_Write your answer here._``;
- outputs are removed and execution counts cleared; notebook and cell metadata and
  cell ids are kept (so a cell can be matched between the two versions);
- the title in the first cell says it is the exercise version, its launch badges
  (the line under ``<!-- launch-badges: ... -->``) point at the exercise notebook,
  and a short note tells the learner how to work through it;
- exercise notebooks whose solution notebook no longer exists are deleted.

Unbalanced or nested markers, and solution notebooks without any solution region,
are errors: the script stops with the file, cell and line at fault. The output is
deterministic (rerunning it gives byte-identical files). It needs only the standard
library, and uses ``scripts/sync_links.py`` (when present) for the launch links, so
running that script afterwards changes nothing in exercises/.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SOLUTION_SUFFIX = "_solutions.ipynb"
EXERCISE_SUFFIX = "_exercises.ipynb"
SOLUTION_NAME = re.compile(r"^(?P<stem>\d\d_[A-Za-z0-9_]+?)_solutions\.ipynb$")
EXERCISE_NAME = re.compile(r"^(?P<stem>\d\d_[A-Za-z0-9_]+?)_exercises\.ipynb$")

CODE_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\s*$")
CODE_END = re.compile(r"^[ \t]*#\s*END SOLUTION\s*$")
MD_BEGIN = re.compile(r"^\s*<!--\s*BEGIN SOLUTION\s*-->\s*$")
MD_END = re.compile(r"^\s*<!--\s*END SOLUTION\s*-->\s*$")
ANY_MARKER = re.compile(r"(BEGIN|END) SOLUTION")

CODE_PLACEHOLDER = ("# YOUR CODE HERE", 'raise NotImplementedError("Write your solution here")')
MD_PLACEHOLDER = "_Write your answer here._"

BADGE_MARKER = "<!-- launch-badges:"
TITLE_SEPARATOR = re.compile(r"\s*(?:[\-\u2013\u2014:·,(|]|$)|\s+(?=[A-Za-z])")
TITLE_WORDS = {"exercise", "exercises", "solution", "solutions", "with", "and", "to", "the", "worked", "for"}


class MarkerError(ValueError):
    """A solution notebook has unbalanced, nested or misplaced solution markers."""


@dataclass
class Result:
    target: Path
    text: str | None  # None: the target is stale and must be deleted


# -- pure transformations (unit-tested) ---------------------------------------


def _source_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _source_lines(text: str) -> list[str]:
    """Split like nbformat does when it writes a notebook (lines keep their newline)."""
    return text.splitlines(keepends=True)


def replace_code_regions(source: str, where: str = "cell") -> tuple[str, int]:
    """Replace every ``# BEGIN/END SOLUTION`` region of a code cell; return (new source, regions)."""
    out: list[str] = []
    lines = source.split("\n")
    begin_line = None
    indent = ""
    regions = 0
    for number, line in enumerate(lines, start=1):
        begin = CODE_BEGIN.match(line)
        if begin:
            if begin_line is not None:
                raise MarkerError(
                    f"{where}, line {number}: '# BEGIN SOLUTION' inside the region opened at line "
                    f"{begin_line} (regions cannot be nested; close it with '# END SOLUTION')"
                )
            begin_line, indent = number, begin.group("indent")
            continue
        if CODE_END.match(line):
            if begin_line is None:
                raise MarkerError(f"{where}, line {number}: '# END SOLUTION' without a '# BEGIN SOLUTION' before it")
            out.extend(indent + placeholder for placeholder in CODE_PLACEHOLDER)
            begin_line = None
            regions += 1
            continue
        if MD_BEGIN.match(line) or MD_END.match(line):
            raise MarkerError(
                f"{where}, line {number}: an HTML solution marker in a code cell; "
                "use '# BEGIN SOLUTION' / '# END SOLUTION' in code cells"
            )
        if begin_line is None:
            if ANY_MARKER.search(line) and line.lstrip().startswith("#"):
                raise MarkerError(
                    f"{where}, line {number}: malformed solution marker {line.strip()!r}; "
                    "write exactly '# BEGIN SOLUTION' or '# END SOLUTION' on its own line"
                )
            out.append(line)
    if begin_line is not None:
        raise MarkerError(f"{where}, line {begin_line}: '# BEGIN SOLUTION' is never closed by '# END SOLUTION'")
    return "\n".join(out), regions


def replace_markdown_regions(source: str, where: str = "cell") -> tuple[str, int]:
    """Replace every ``<!-- BEGIN/END SOLUTION -->`` region of a markdown cell."""
    out: list[str] = []
    begin_line = None
    regions = 0
    for number, line in enumerate(source.split("\n"), start=1):
        if MD_BEGIN.match(line):
            if begin_line is not None:
                raise MarkerError(
                    f"{where}, line {number}: '<!-- BEGIN SOLUTION -->' inside the region opened at "
                    f"line {begin_line} (regions cannot be nested)"
                )
            begin_line = number
            continue
        if MD_END.match(line):
            if begin_line is None:
                raise MarkerError(
                    f"{where}, line {number}: '<!-- END SOLUTION -->' without a '<!-- BEGIN SOLUTION -->' before it"
                )
            out.append(MD_PLACEHOLDER)
            begin_line = None
            regions += 1
            continue
        if CODE_BEGIN.match(line) or CODE_END.match(line):
            raise MarkerError(
                f"{where}, line {number}: '# BEGIN/END SOLUTION' in a markdown cell; "
                "use '<!-- BEGIN SOLUTION -->' / '<!-- END SOLUTION -->' there"
            )
        if begin_line is None:
            if "<!--" in line and ANY_MARKER.search(line):
                raise MarkerError(
                    f"{where}, line {number}: malformed solution marker {line.strip()!r}; "
                    "write exactly '<!-- BEGIN SOLUTION -->' or '<!-- END SOLUTION -->' on its own line"
                )
            out.append(line)
    if begin_line is not None:
        raise MarkerError(
            f"{where}, line {begin_line}: '<!-- BEGIN SOLUTION -->' is never closed by '<!-- END SOLUTION -->'"
        )
    return "\n".join(out), regions


def exercise_title(title_line: str) -> str:
    """``# 01 · Single-task learning: solutions`` -> ``# 01 · Single-task learning — exercises``.

    A trailing part made only of words like "exercises", "solutions", "with", "and"
    (after a separator such as ``:``, ``—`` or ``(``) is replaced by ``— exercises``.
    """
    title = title_line.rstrip()
    title = re.sub(
        r"^(#+\s*)(?:exercises?\s+)?(?:with\s+)?solutions?\s*[:\-\u2013\u2014·]\s*",
        r"\1",
        title,
        flags=re.IGNORECASE,
    )
    head = title.lstrip("#").strip()
    hashes = title[: len(title) - len(title.lstrip("#"))]
    for match in TITLE_SEPARATOR.finditer(head):
        if match.start() == 0:
            continue
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", head[match.start():])]
        if words and set(words) <= TITLE_WORDS and any(w.startswith(("solution", "exercise")) for w in words):
            head = head[: match.start()].rstrip()
            break
    return f"{hashes} {head} — exercises"


def rewrite_first_cell(source: str, stem: str) -> str:
    """Retitle the first markdown cell, point its badges at the exercise notebook, add a note."""
    solution_path = f"solutions/{stem}{SOLUTION_SUFFIX}"
    exercise_path = f"exercises/{stem}{EXERCISE_SUFFIX}"
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if re.match(r"^#\s", line):
            lines[i] = exercise_title(line)
            break
    insert_at = None
    for i, line in enumerate(lines):
        if line.strip().startswith(BADGE_MARKER):
            insert_at = i + 1
            if i + 1 < len(lines) and lines[i + 1].lstrip().startswith("[!["):
                badge = lines[i + 1]
                for old, new in (
                    (solution_path, exercise_path),
                    (solution_path.replace("/", "%2F"), exercise_path.replace("/", "%2F")),
                ):
                    badge = badge.replace(old, new)
                lines[i + 1] = badge
                insert_at = i + 2
            break
    if insert_at is None:  # no badge marker: put the note under the title
        insert_at = next((i + 1 for i, line in enumerate(lines) if re.match(r"^#\s", line)), 0)
    note = (
        f"> **Exercise version.** Write your code where you see `# YOUR CODE HERE` and your answers "
        f"where you see _Write your answer here._, then run the check cell that follows each exercise "
        f"(`ex.q1.hint()` prints a hint). The worked solutions are in "
        f"[`{solution_path}`](../{solution_path}); this notebook is generated from them by "
        f"`scripts/make_exercises.py`, so edit the solutions notebook, not this one."
    )
    block = ["", note]
    if insert_at < len(lines) and lines[insert_at].strip():
        block.append("")
    lines[insert_at:insert_at] = block
    return "\n".join(lines)


def make_exercise_notebook(nb: dict, stem: str, where: str = "notebook") -> dict:
    """Return the exercise version of a solution notebook (a new dict; ``nb`` is not modified)."""
    if nb.get("nbformat") != 4:
        raise ValueError(f"{where}: expected an nbformat 4 notebook, got nbformat {nb.get('nbformat')}")
    cells = []
    regions = 0
    seen_ids: set[str] = set()
    first_markdown_done = False
    for index, cell in enumerate(nb.get("cells", [])):
        kind = cell.get("cell_type")
        label = f"{where}, cell {index + 1} ({kind})"
        text = _source_text(cell)
        if kind == "code":
            text, n = replace_code_regions(text, label)
        elif kind == "markdown":
            text, n = replace_markdown_regions(text, label)
            if not first_markdown_done:
                text = rewrite_first_cell(text, stem)
        else:
            n = 0
            if ANY_MARKER.search(text):
                raise MarkerError(f"{label}: solution markers are only allowed in code and markdown cells")
        if kind == "markdown":
            first_markdown_done = True
        regions += n
        cell_id = cell.get("id") or f"cell-{index + 1}"
        if cell_id in seen_ids:
            raise ValueError(f"{label}: duplicate cell id {cell_id!r}; give each cell a unique id")
        seen_ids.add(cell_id)
        new = {
            "cell_type": kind,
            "id": cell_id,
            "metadata": cell.get("metadata", {}),
            "source": _source_lines(text),
        }
        if kind == "code":
            new["execution_count"] = None
            new["outputs"] = []
        if "attachments" in cell:
            new["attachments"] = cell["attachments"]
        cells.append(new)
    if regions == 0:
        raise MarkerError(
            f"{where}: no solution region found; mark each answer with '# BEGIN SOLUTION' / "
            "'# END SOLUTION' (code) or '<!-- BEGIN SOLUTION -->' / '<!-- END SOLUTION -->' (markdown), "
            "otherwise the exercise notebook would contain the answers"
        )
    return {
        "cells": cells,
        "metadata": nb.get("metadata", {}),
        "nbformat": 4,
        "nbformat_minor": max(5, int(nb.get("nbformat_minor", 5))),
    }


def _sync_links():
    """The lead's ``scripts/sync_links.py`` module, or None when it is not there."""
    import importlib.util

    path = Path(__file__).resolve().parent / "sync_links.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("_ptcourse_sync_links", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fix_links(nb: dict, exercise_path: str) -> dict:
    """Apply ``scripts/sync_links.py`` to the exercise notebook, so that running it later
    changes nothing: badges for ``exercise_path`` and the install address from pyproject."""
    sync = _sync_links()
    if sync is None:
        return nb
    try:
        url = sync.repository_url()
    except SystemExit:  # no repository URL: keep the links copied from the solutions
        return nb
    return sync.fix_notebook(nb, exercise_path, url)


def dumps(nb: dict) -> str:
    """Serialise exactly like ``nbformat.writes`` (sorted keys, one-space indent, final newline)."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


# -- files ---------------------------------------------------------------------


def plan(solutions_dir: Path, exercises_dir: Path) -> list[Result]:
    """Compute every exercise notebook (text) and every stale one (text None), sorted by path."""
    results: list[Result] = []
    stems = set()
    for path in sorted(solutions_dir.glob(f"*{SOLUTION_SUFFIX}")):
        match = SOLUTION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: solution notebooks must be named NN_topic{SOLUTION_SUFFIX}")
        stem = match.group("stem")
        stems.add(stem)
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid notebook JSON ({err})") from err
        exercise = make_exercise_notebook(nb, stem, where=str(path))
        exercise = fix_links(exercise, f"exercises/{stem}{EXERCISE_SUFFIX}")
        results.append(Result(exercises_dir / f"{stem}{EXERCISE_SUFFIX}", dumps(exercise)))
    if exercises_dir.is_dir():
        for path in sorted(exercises_dir.glob(f"*{EXERCISE_SUFFIX}")):
            match = EXERCISE_NAME.match(path.name)
            if match and match.group("stem") not in stems:
                results.append(Result(path, None))
    return sorted(results, key=lambda r: r.target.name)


def out_of_date(results: list[Result]) -> list[str]:
    """Describe each target that differs from what is on disk."""
    problems = []
    for r in results:
        if r.text is None:
            problems.append(f"{r.target}: stale (its solution notebook no longer exists)")
        elif not r.target.exists():
            problems.append(f"{r.target}: missing")
        elif r.target.read_text(encoding="utf-8") != r.text:
            problems.append(f"{r.target}: out of date")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date files (exit 1 if any)")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="solutions folder")
    parser.add_argument("--exercises", type=Path, default=ROOT / "exercises", help="exercises folder")
    args = parser.parse_args(argv)

    try:
        results = plan(args.solutions, args.exercises)
    except ValueError as err:  # MarkerError included
        print(f"error: {err}", file=sys.stderr)
        return 2
    problems = out_of_date(results)
    if args.check:
        if problems:
            print("Exercise notebooks are out of date with solutions/ (run `python scripts/make_exercises.py`):")
            for line in problems:
                print(f"  {line}")
            return 1
        print(f"Exercise notebooks are up to date ({sum(r.text is not None for r in results)} checked).")
        return 0
    args.exercises.mkdir(parents=True, exist_ok=True)
    for r in results:
        if r.text is None:
            r.target.unlink()
            print(f"deleted {r.target} (no solution notebook)")
        elif not r.target.exists() or r.target.read_text(encoding="utf-8") != r.text:
            r.target.write_text(r.text, encoding="utf-8", newline="\n")
            print(f"wrote   {r.target}")
        else:
            print(f"same    {r.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
