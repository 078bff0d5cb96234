"""What validation reports (:class:`Finding`) and the numeric helpers its rules share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Finding"]

REL = 1e-9


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`validate`.

    Attributes
    ----------
    path
        ``"<node>#<json-pointer>"``, e.g. ``"#/spatial:bbox"`` (root) or
        ``"1#/spatial:shape"`` (level group ``1``).
    message
        What is wrong and, where possible, what the value should be.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def is_real(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def as_vector(value: object, n: int) -> tuple[float, ...] | None:
    if isinstance(value, list | tuple) and len(value) == n and all(is_real(v) for v in value):
        return tuple(float(v) for v in value)
    return None


def as_shape(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        return (value[0], value[1])
    return None


def is_close(x: float, y: float, scale: float = 0.0) -> bool:
    return abs(x - y) <= REL * max(abs(x), abs(y), abs(scale))


def as_int(x: float) -> int | None:
    r = round(x)
    return int(r) if r >= 1 and abs(x - r) <= REL * abs(x) else None


def fmt_values(values: Sequence[float]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"
