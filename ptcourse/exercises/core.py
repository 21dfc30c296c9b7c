"""The exercise machinery: one :class:`Exercise` per question, with a check and hints.

A chapter's checks live in ``ptcourse/exercises/chNN.py``::

    from ptcourse.exercises.core import Exercise, close, to_float

    def _check_q1(answer) -> tuple[bool, str]:
        value = to_float(answer, "the generalisation gap")
        if close(value, 0.12, tol=1e-3):
            return True, "that is the gap at the selected epoch."
        return False, "compare the validation and training accuracy at the same epoch."

    q1 = Exercise("q1", "Generalisation gap", check=_check_q1,
                  hints=["gap = train accuracy - validation accuracy", "use the best epoch"])

Learners call ``ex.q1.check(answer)`` (prints one ✅/❌ line, returns True/False)
and ``ex.q1.hint()`` (prints the next hint).

A check function returns ``(correct, feedback)``. The feedback is plain words that
help without giving the answer away. When the answer has the wrong type or shape,
the check raises :class:`AnswerError` with a message saying what was expected (the
helpers below do that for you); :meth:`Exercise.check` prints the message instead
of a traceback. Any other exception raised while checking is reported the same way.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "AnswerError",
    "Exercise",
    "call_answer",
    "close",
    "require_shape",
    "require_type",
    "to_float",
    "to_int",
    "to_numpy",
]

CheckFn = Callable[[Any], "tuple[bool, str] | bool"]


class AnswerError(ValueError):
    """The answer cannot be checked (wrong type, shape, ...); the message says why (chapter 01).

    Usage: ``raise AnswerError("give a number, got a str.")``
    """


class Exercise:
    """One exercise: a name, a title, a check function and progressive hints (chapter 01).

    Usage::

        q1 = Exercise("q1", "Pick the split", check=_check_q1, hints=["...", "..."])
        q1.check("validation")   # prints "✅ q1 · Pick the split — correct. ..."; returns True
        q1.hint()                # prints hint 1, then hint 2, then says there are no more
    """

    def __init__(
        self,
        name: str,
        title: str,
        check: CheckFn,
        hints: Sequence[str] = (),
    ) -> None:
        if not callable(check):
            raise TypeError(f"Exercise {name!r}: check must be a function, got {type(check).__name__}")
        if isinstance(hints, str):
            hints = [hints]
        self.name = name
        self.title = title
        self.hints: tuple[str, ...] = tuple(hints)
        self._check_fn = check
        self._hints_shown = 0
        self.attempts = 0
        self.solved = False

    # -- checking ---------------------------------------------------------
    def evaluate(self, answer: Any) -> tuple[bool, str]:
        """Return ``(correct, feedback)`` without printing (used by tests and by :meth:`check`)."""
        if answer is None or answer is Ellipsis:
            return False, "no answer yet: replace the placeholder with your answer and run the cell again."
        try:
            result = self._check_fn(answer)
        except AnswerError as err:
            return False, str(err)
        except NotImplementedError:
            return False, NOT_WRITTEN
        except Exception as err:  # noqa: BLE001 - any failure in the learner's answer becomes feedback
            return False, (
                f"your answer could not be checked ({type(err).__name__}: {str(err)[:200]}). "
                "Check its type and shape against the question."
            )
        if isinstance(result, tuple):
            if len(result) != 2:
                raise TypeError(f"the check of {self.name} must return (bool, str), got {result!r}")
            ok, feedback = result
        else:
            ok, feedback = result, ""
        ok = bool(ok)
        feedback = " ".join(str(feedback).split()) or ("well done." if ok else "not quite; try again or ask for a hint.")
        return ok, feedback

    def check(self, answer: Any) -> bool:
        """Check ``answer``, print one ✅/❌ line of feedback and return True when correct."""
        ok, feedback = self.evaluate(answer)
        self.attempts += 1
        self.solved = self.solved or ok
        verdict = "correct" if ok else "not yet"
        feedback = feedback[:1].upper() + feedback[1:]
        line = f"{'✅' if ok else '❌'} {self.name} · {self.title} — {verdict}. {feedback}"
        if not ok and self._hints_shown < len(self.hints):
            line += "  (stuck? call .hint() on this exercise)"
        print(line)
        return ok

    # -- hints ------------------------------------------------------------
    def hint(self) -> None:
        """Print the next hint; each call reveals one more, then says there are no more."""
        n = len(self.hints)
        if n == 0:
            print(f"💡 {self.name} has no hints: re-read the question and the chapter section it refers to.")
            return
        if self._hints_shown >= n:
            print(
                f"💡 No more hints for {self.name} (all {n} shown). "
                f"The last one was: {self.hints[-1]}"
            )
            return
        self._hints_shown += 1
        print(f"💡 Hint {self._hints_shown}/{n} for {self.name}: {self.hints[self._hints_shown - 1]}")

    def reset(self) -> None:
        """Forget the hints shown and the attempts made."""
        self._hints_shown = 0
        self.attempts = 0
        self.solved = False

    def __repr__(self) -> str:
        n = len(self.hints)
        status = "solved" if self.solved else f"{self.attempts} attempt{'s' * (self.attempts != 1)}"
        return (
            f"<Exercise {self.name} · {self.title!r}: {n} hint{'s' * (n != 1)}, {status}; "
            f"call {self.name}.check(answer) or {self.name}.hint()>"
        )


# -- helpers for check functions --------------------------------------------


def _describe(value: Any) -> str:
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{article} {name} of shape {tuple(shape)}"
    return f"{article} {name}"


NOT_WRITTEN = "your solution is not written yet (it still raises NotImplementedError)."


def call_answer(fn: Any, *args: Any, what: str = "your function") -> Any:
    """Call the learner's function ``fn(*args)``; turn every failure into :class:`AnswerError`.

    A value that is not callable, an unfinished stub (``NotImplementedError``) and any
    exception the function raises each get one clear message, the same in every chapter.

    Usage: ``got = call_answer(answer, x, 4, what="split_heads")``
    """
    if not callable(fn):
        raise AnswerError(f"pass {what} itself (the function, without calling it), got {_describe(fn)}.")
    try:
        return fn(*args)
    except NotImplementedError:
        raise AnswerError(NOT_WRITTEN) from None
    except AnswerError:
        raise
    except Exception as err:  # noqa: BLE001 - the learner's function failed
        raise AnswerError(f"{what} raised {type(err).__name__}: {str(err)[:200]}") from err


def to_float(answer: Any, what: str = "your answer") -> float:
    """Return ``answer`` as a finite float, or raise :class:`AnswerError` saying what was expected (chapter 01).

    Accepts Python numbers and one-element tensors / arrays; rejects bools and strings.

    Usage: ``value = to_float(answer, "the loss")``
    """
    if isinstance(answer, bool):
        raise AnswerError(f"{what} should be a number, got a bool ({answer}).")
    if isinstance(answer, numbers.Real):
        value = float(answer)
    elif hasattr(answer, "item") and (hasattr(answer, "numel") or hasattr(answer, "size")):
        size = answer.numel() if hasattr(answer, "numel") else int(answer.size)
        if size != 1:
            raise AnswerError(f"{what} should be a single number, got {_describe(answer)}.")
        value = float(answer.item())
    else:
        raise AnswerError(f"{what} should be a number, got {_describe(answer)}.")
    if not math.isfinite(value):
        raise AnswerError(f"{what} should be a finite number, got {value}.")
    return value


def to_int(answer: Any, what: str = "your answer") -> int:
    """Return ``answer`` as an int (a float like ``3.0`` is accepted), else raise :class:`AnswerError` (chapter 01).

    Usage: ``n = to_int(answer, "the number of steps")``
    """
    value = to_float(answer, what)
    if value != int(value):
        raise AnswerError(f"{what} should be a whole number, got {value}.")
    return int(value)


def require_type(answer: Any, types: type | tuple[type, ...], what: str = "your answer") -> Any:
    """Return ``answer`` if it is an instance of ``types``, else raise :class:`AnswerError` (chapter 01).

    Usage: ``require_type(answer, dict, "your groups")``
    """
    if not isinstance(answer, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise AnswerError(f"{what} should be a {names}, got {_describe(answer)}.")
    return answer


def letter_set(answer: Any, letters: Any) -> set[str]:
    """The set of letters in ``answer`` (a set, list or tuple, or a string like "B, E"), each one of ``letters`` (chapter 01).

    Usage: ``chosen = letter_set(answer, PROCEDURES)  # {"B", "E"}``
    """
    if isinstance(answer, str):
        answer = answer.replace(",", " ").split()
    if not isinstance(answer, (set, list, tuple, frozenset)):
        raise AnswerError(f"give a set of letters such as {{'B', 'E'}}, got a {type(answer).__name__}.")
    chosen = set()
    for item in answer:
        require_type(item, str, "each letter")
        letter = item.strip().upper()
        if letter not in letters:
            raise AnswerError(f"{item!r} is not one of the letters {sorted(letters)}.")
        chosen.add(letter)
    return chosen


def check_letters(answer: Any, options: Any, correct: set[str], why: dict[str, str], praise: str,
                  kind: str) -> tuple[bool, str]:
    """Verdict on a pick-the-letters answer: right, the first wrong letter's reason, or how many are missing (chapter 01).

    ``why[letter]`` explains a letter that should not be picked; ``kind`` names the right ones
    in the "you left out" message.

    Usage: ``check_letters(answer, PROCEDURES, {"B", "E"}, WHY, "both keep the test set untouched.", "honest procedure(s)")``
    """
    letters = letter_set(answer, options)
    if letters == correct:
        return True, praise
    wrong = sorted(letters - correct)
    if wrong:
        return False, why[wrong[0]] + "."
    return False, f"you left out {len(correct - letters)} {kind}."


def require_shape(answer: Any, shape: Sequence[int | None], what: str = "your answer") -> Any:
    """Return ``answer`` if its ``.shape`` matches ``shape`` (``None`` matches any size) (chapter 01).

    Usage: ``require_shape(answer, (None, 10), "the logits")``
    """
    actual = getattr(answer, "shape", None)
    if actual is None:
        raise AnswerError(f"{what} should be a tensor or array of shape {tuple(shape)}, got {_describe(answer)}.")
    actual = tuple(actual)
    expected = tuple(shape)
    pretty = "(" + ", ".join("any" if s is None else str(s) for s in expected) + ")"
    if len(actual) != len(expected) or any(e is not None and a != e for a, e in zip(actual, expected)):
        raise AnswerError(f"{what} should have shape {pretty}, got shape {actual}.")
    return answer


def to_numpy(answer: Any, what: str = "your answer"):
    """Return ``answer`` (tensor, array, list or number) as a float64 numpy array (chapter 01).

    Usage: ``array = to_numpy(answer, "the weights")``
    """
    import numpy as np

    if hasattr(answer, "detach"):
        answer = answer.detach().cpu().float().numpy()
    try:
        return np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AnswerError(f"{what} should be numbers (a tensor, array or list), got {_describe(answer)}.") from err


def close(a: Any, b: Any, tol: float = 1e-6, rel: float = 0.0) -> bool:
    """True when ``a`` and ``b`` agree within ``tol`` (absolute) or ``rel`` (relative) (chapter 01).

    Works for numbers and for tensors / arrays / lists of the same shape
    (then every element must agree). Different shapes are not close.

    Usage: ``close(to_float(answer), expected, tol=1e-4)``
    """
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real):
        return math.isclose(float(a), float(b), abs_tol=tol, rel_tol=rel)
    x, y = to_numpy(a, "the first value"), to_numpy(b, "the second value")
    if x.shape != y.shape:
        return False
    import numpy as np

    return bool(np.all(np.abs(x - y) <= tol + rel * np.abs(y)))
