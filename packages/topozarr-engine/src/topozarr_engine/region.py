"""Regions (boxes of array cells), region grids and Z-order (Morton) tile ordering."""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "Region",
    "coarsened_shape",
    "grid_shape",
    "iter_grid",
    "morton_key",
    "morton_order",
    "region_block",
]


_START = operator.attrgetter("start")
_STOP = operator.attrgetter("stop")


@dataclass(frozen=True)
class Region:
    """A box of array cells: one ``slice(start, stop)`` per axis (step 1, bounds resolved).

    Regions are hashable and usable directly as an index: ``array[region.slices]``.
    """

    slices: tuple[slice, ...]

    def __post_init__(self) -> None:
        for s in self.slices:
            if not isinstance(s.start, int) or not isinstance(s.stop, int):
                raise ValueError(f"Region slices need integer bounds, got {s}")
            if s.step not in (None, 1) or s.start < 0 or s.stop < s.start:
                raise ValueError(f"Region slices must be forward with step 1, got {s}")

    def __hash__(self) -> int:
        # slice objects are unhashable before Python 3.12: hash the bounds instead.
        return hash((self.start, self.stop))

    @classmethod
    def from_bounds(cls, start: Sequence[int], stop: Sequence[int]) -> Region:
        """Build a region from per-axis ``start`` and ``stop`` (exclusive)."""
        if len(start) != len(stop):
            raise ValueError("start and stop must have the same length")
        return cls(tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True)))

    @classmethod
    def _checked(cls, start: Sequence[int], stop: Sequence[int]) -> Region:
        """``from_bounds`` for bounds computed here from other regions' (plain ints, equal
        lengths): only the order of the bounds is checked. A write builds regions for every
        chunk of every tile; the full check of each slice cost more than the arithmetic."""
        if min(start, default=0) < 0 or any(map(operator.gt, start, stop)):
            return cls.from_bounds(start, stop)  # raises the usual error
        region = object.__new__(cls)
        object.__setattr__(region, "slices", tuple(map(slice, start, stop)))
        return region

    @classmethod
    def full(cls, shape: Sequence[int]) -> Region:
        """The region covering a whole array of ``shape``."""
        return cls.from_bounds([0] * len(shape), shape)

    @property
    def ndim(self) -> int:
        return len(self.slices)

    # map() with attrgetter: no Python frame per axis (these run for every chunk of a tile).
    @property
    def start(self) -> tuple[int, ...]:
        return tuple(map(_START, self.slices))

    @property
    def stop(self) -> tuple[int, ...]:
        return tuple(map(_STOP, self.slices))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(map(operator.sub, map(_STOP, self.slices), map(_START, self.slices)))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def is_empty(self) -> bool:
        """True when the region holds no cell."""
        return self.size == 0

    def intersect(self, other: Region) -> Region:
        """Cells in both regions (possibly empty: then ``start == stop`` on some axis)."""
        if len(self.slices) != len(other.slices):
            raise ValueError(f"regions {self} and {other} have different numbers of axes")
        start = tuple(map(max, self.start, other.start))
        return Region._checked(start, tuple(map(max, start, map(min, self.stop, other.stop))))

    def relative_to(self, origin: Sequence[int] | Region) -> Region:
        """This region in the coordinates of a block whose first cell is ``origin``."""
        o = origin.start if isinstance(origin, Region) else tuple(map(int, origin))
        if len(o) != len(self.slices):
            raise ValueError(f"origin {o} has not one coordinate per axis of {self}")
        return Region._checked(
            tuple(map(operator.sub, self.start, o)), tuple(map(operator.sub, self.stop, o))
        )

    def scaled(self, stride: Sequence[int], limit: Sequence[int] | None = None) -> Region:
        """The finer-level cells under this coarse region: ``[start*s, stop*s)`` per axis.

        ``limit`` (the finer array's shape) clips the result, so the last window of an axis
        shorter than its stride covers what exists (xarray ``coarsen(boundary="trim")``).
        """
        start = [a * s for a, s in zip(self.start, stride, strict=True)]
        stop = [b * s for b, s in zip(self.stop, stride, strict=True)]
        if limit is not None:
            stop = [min(b, n) for b, n in zip(stop, limit, strict=True)]
        return Region.from_bounds(start, stop)

    def __str__(self) -> str:
        return "[" + ", ".join(f"{s.start}:{s.stop}" for s in self.slices) + "]"


def grid_shape(shape: Sequence[int], block: Sequence[int]) -> tuple[int, ...]:
    """Number of blocks per axis covering ``shape`` (the last one may be partial)."""
    return tuple(-(-n // b) if n else 0 for n, b in zip(shape, block, strict=True))


def iter_grid(
    shape: Sequence[int], block: Sequence[int]
) -> Iterator[tuple[tuple[int, ...], Region]]:
    """Yield ``(grid_index, region)`` for every block of a regular grid, in C order.

    Blocks are clipped to ``shape``; an array with a zero-length axis yields nothing.
    """
    for idx in itertools.product(*(range(g) for g in grid_shape(shape, block))):
        start = [i * b for i, b in zip(idx, block, strict=True)]
        stop = [min(a + b, n) for a, b, n in zip(start, block, shape, strict=True)]
        yield idx, Region.from_bounds(start, stop)


def morton_key(index: Sequence[int]) -> int:
    """Z-order (Morton) key of a grid index: the bits of all axes interleaved.

    Axis 0 takes the most significant bit of each group, so in 2-D the order is the usual
    row-major Z: (0,0), (0,1), (1,0), (1,1), (0,2), ...
    """
    n = len(index)
    if n == 0:
        return 0
    key = 0
    nbits = max(int(i).bit_length() for i in index)
    for bit in range(nbits):
        for axis, value in enumerate(index):
            key |= ((int(value) >> bit) & 1) << (bit * n + (n - 1 - axis))
    return key


def morton_order(
    indices: Iterable[tuple[int, ...]], *, axes: Sequence[int] | None = None
) -> list[tuple[int, ...]]:
    """Sort grid indices in Z-order over ``axes`` (default: all), the other axes outermost.

    With power-of-two chunk and shard edges the blocks under any coarser block are then one
    contiguous run, which keeps few coarse-level shard buffers open at once.
    """
    indices = list(indices)
    if not indices:
        return indices
    ndim = len(indices[0])
    z_axes = list(range(ndim)) if axes is None else [a % ndim for a in axes]
    outer = [a for a in range(ndim) if a not in z_axes]
    return sorted(
        indices,
        key=lambda idx: (tuple(idx[a] for a in outer), morton_key([idx[a] for a in z_axes])),
    )


def region_block(
    shape: Sequence[int],
    itemsize: int,
    base: Sequence[int],
    *,
    max_region_bytes: int,
    widen_to: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Block shape of a region grid: ``base`` (the shard) widened where the budget allows.

    The block is always a multiple of ``base`` per axis, so a region never splits a shard
    (concurrent partial writes to one shard would race in the store's read-modify-write).
    It is widened per axis, last axis first, to a common multiple with ``widen_to`` while
    ``max_region_bytes`` allows: the source chunks (so every source chunk is decoded exactly
    once), or pyramid strides (so more levels are computed inside one block). Widening past
    the array extent is pointless and is skipped.

    Parameters
    ----------
    shape
        Array shape.
    itemsize
        Bytes per element.
    base
        Smallest block, usually the destination's shard (or chunk) shape.
    max_region_bytes
        Soft budget: never enforced below ``base``.
    widen_to
        Per-axis multiples to widen to, or ``None`` (``base`` as it is).
    """
    ndim = len(shape)
    block = [int(b) for b in base]

    def nbytes(b: Sequence[int]) -> int:
        return math.prod(min(x, max(1, n)) for x, n in zip(b, shape, strict=True)) * itemsize

    if widen_to is None:
        return tuple(block)
    for axis in reversed(range(ndim)):
        w = int(widen_to[axis])
        if w <= 1 or block[axis] % w == 0 or block[axis] >= shape[axis]:
            continue
        trial = list(block)
        trial[axis] = math.lcm(block[axis], w)
        # Past the array end a wider block adds nothing but covers the whole axis: allow
        # it, clipped, as long as the clipped block fits the budget.
        if nbytes(trial) <= max_region_bytes:
            block = trial
    return tuple(block)


def coarsened_shape(shape: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    """Shape after block reduction by ``stride``: ``xarray.coarsen(boundary="trim")``.

    ``n // s`` windows per axis, except that an axis shorter than its stride (but not empty)
    still yields one window.
    """
    if len(shape) != len(stride):
        raise ValueError(f"stride {tuple(stride)} does not match the {len(shape)}-d shape")
    out = []
    for n, s in zip(shape, stride, strict=True):
        if s < 1:
            raise ValueError(f"strides must be >= 1, got {tuple(stride)}")
        out.append(n // s if n >= s else (1 if n > 0 else 0))
    return tuple(out)
