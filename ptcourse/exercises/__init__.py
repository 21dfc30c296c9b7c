"""Automatic checks for the course exercises.

Each chapter's exercise notebook (``exercises/NN_topic_exercises.ipynb``) imports its
checks and calls them on your answers::

    from ptcourse.exercises import ch01 as ex

    ex.q1.check(my_answer)   # prints one ✅/❌ line with feedback, returns True/False
    ex.q1.hint()             # prints the next hint (call again for a stronger one)
    ex.q1                    # shows the exercise, its number of hints and your progress

The checks never print the answer itself; the full worked answers are in
``solutions/NN_topic_solutions.ipynb``. The machinery is in
:mod:`ptcourse.exercises.core`; chapter modules (``ch01``, ``ch02``, ...) are imported
only when you ask for them, so ``import ptcourse.exercises`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise

__all__ = ["AnswerError", "Exercise"]


def __getattr__(name: str) -> Any:
    # ``from ptcourse.exercises import ch01`` works without this (it imports the
    # submodule); this also makes ``ptcourse.exercises.ch01`` work as an attribute.
    if name.startswith("ch") and name[2:].isdigit():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
