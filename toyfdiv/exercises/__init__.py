"""Exercise checkers for the lessons: each says right, or what is wrong.

One module per lesson (``toyfdiv.exercises.lesson1`` …); each checker takes the student's
answer and returns a :class:`Verdict`, whose text says "Right" or explains the mistake.

>>> from toyfdiv.exercises import lesson1
>>> print(lesson1.check_...(answer))          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

__all__ = ["Verdict", "right", "wrong"]


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


def __getattr__(name: str):
    if name.startswith("lesson"):
        return import_module(f"{__name__}.{name}")
    raise AttributeError(name)
