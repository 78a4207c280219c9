"""Exercise checkers for the lessons: each says right, or what is wrong.

One module per lesson (``toyfdiv.exercises.lesson1`` …); each checker takes the student's
answer and returns a :class:`Verdict`, whose text says "Right" or explains the mistake.

>>> from toyfdiv.exercises import lesson1
>>> print(lesson1.check_...(answer))          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
import math

from .. import tasks

__all__ = ["Verdict", "right", "wrong", "as_number", "agrees", "default_task"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``ok`` and a message for the student."""

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return ("✅ Right: " if self.ok else "❌ Not yet: ") + self.message

    def _repr_markdown_(self) -> str:  # shown nicely in Jupyter
        return str(self)


def right(message: str = "well done.") -> Verdict:
    return Verdict(True, message)


def wrong(message: str) -> Verdict:
    return Verdict(False, message)


def as_number(answer, what: str) -> float | Verdict:
    """The answer as a float, or a Verdict that says why it is not a usable number."""
    if answer is None:
        return wrong(f"no answer yet: replace None by {what}, a number.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return wrong(f"{what} should be a number (a float), got {answer!r}.")
    if math.isnan(value):
        return wrong(f"{what} is NaN; compute a number.")
    return value


def agrees(value: float, truth: float) -> bool:
    """Whether a numeric answer equals ``truth`` up to what a student's computation loses:
    rel 1e-6 (printed digits, float rounding), abs 1e-9 (answers at 0)."""
    return math.isclose(value, truth, rel_tol=1e-6, abs_tol=1e-9)


@lru_cache(maxsize=1)
def default_task():
    """The course's default task (:func:`toyfdiv.tasks.default`), built once."""
    return tasks.default()


def __getattr__(name: str):
    if name.startswith("lesson"):
        return import_module(f"{__name__}.{name}")
    raise AttributeError(name)
