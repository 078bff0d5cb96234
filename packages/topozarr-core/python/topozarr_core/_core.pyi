"""Type stubs and reference documentation for the compiled kernel ``topozarr_core._core``."""

import os
from collections.abc import Sequence
from typing import Any, Final, Literal, TypedDict, final

import numpy.typing as npt

__version__: Final[str]
"""The kernel's version (the Cargo package version, equal to the wheel's)."""

METHODS: Final[tuple[str, ...]]
"""Reduction methods the kernel implements: ``("mean", "max", "min", "sum", "nearest", "mode")``."""

DTYPES: Final[tuple[str, ...]]
"""numpy names of the dtypes the kernel reduces (8 integer types, float32, float64)."""

MAX_NDIM: Final[int]
"""Largest number of dimensions of an input array (4)."""

SIMD: Final[str]
"""Instruction set the fast paths use on this machine: ``"avx2"`` or ``"generic"``."""

class _MethodRow(TypedDict):
    """One row of `method_table` (a plain dict at run time)."""

    name: str
    """The method, as `METHODS` spells it."""
    output_dtype: dict[str, str]
    """numpy name of the output dtype for each source dtype of `DTYPES`: the source dtype, or
    for ``sum`` numpy's sum dtype (``int64``/``uint64`` for integers)."""
    empty: Literal["fill", "zero"]
    """What a window without a valid cell reports: the fill value (NaN for floats without
    one), or 0 (``sum``)."""
    decomposable: bool
    """Whether a coarser level follows exactly from fixed-size partial states of a finer one
    (false for ``mode``, whose per-cell histogram grows with the number of distinct values)."""
    state_bytes: dict[str, int]
    """Bytes per level cell of a fresh `Accumulator` (``nbytes / cells``) for each source
    dtype; a ``mode`` cell then grows by one (value, count) entry per distinct value."""

def method_table() -> list[_MethodRow]:
    """The kernel's method table: one `_MethodRow` dict per method, in `METHODS` order."""

def block_reduce(
    a: npt.NDArray[Any],
    stride: Sequence[int],
    method: str,
    fill_value: float | None = None,
    skipna: bool = True,
) -> npt.NDArray[Any]:
    """Reduce every ``stride``-shaped window of ``a`` to one value.

    Parameters
    ----------
    a
        Array of 1 to 4 dimensions and one of `DTYPES`. Any memory layout is read in place
        (strided and negative-stride views included, nothing is copied).
    stride
        Window size per axis, positive integers, one per dimension of ``a``.
    method
        One of `METHODS`. ``nearest`` picks the top-left cell of each window (index ``k*s``)
        and never skips missing values. ``mode`` (categorical data) gives the most frequent
        valid value of each window, ties going to the smallest value.
    fill_value
        Marks missing cells (besides NaN for floats) and is what missing windows become. Must be
        exactly representable in ``a.dtype`` (no NaN, fractions or out-of-range values for
        integers).
    skipna
        True: missing cells are skipped; a window with no valid cell gives ``fill_value`` (or
        NaN for floats without one) for mean/max/min/mode, and 0 for sum. False: a window holding
        any missing cell is missing (``fill_value`` or NaN), for sum too. Integers without a
        ``fill_value`` have no missing cells.

    Returns
    -------
    numpy.ndarray
        Shape as ``xarray.coarsen(boundary="trim")``: ``n // s`` windows per axis, except that an
        axis shorter than its stride gives one window over all of it (an empty axis stays
        empty). dtype: mean/max/min/nearest/mode keep ``a.dtype``; sum keeps float dtypes and gives
        int64 for signed and uint64 for unsigned integers (numpy's ``np.sum`` promotion).
        Float mean/sum accumulate in float64. Integer mean is exact and rounds half to even;
        integer sum is exact and saturates at the int64/uint64 bounds.

    Raises
    ------
    ValueError
        Unknown method, stride of the wrong length or not positive, 0-d or more than
        `MAX_NDIM` dimensions, ``fill_value`` not representable in the dtype.
    TypeError
        ``a`` is not a numpy array, or its dtype is not one of `DTYPES`.

    Notes
    -----
    The GIL is released while computing; large inputs are split over rayon threads
    (``RAYON_NUM_THREADS`` caps them).

    Examples
    --------
    >>> a = np.array([[1.0, 2.0, np.nan, np.nan], [3.0, 4.0, np.nan, 9.0]], "float32")
    >>> block_reduce(a, (2, 2), "mean")
    array([[2.5, 9. ]], dtype=float32)
    """

def pyramid_tile(
    a: npt.NDArray[Any],
    strides: Sequence[Sequence[int]],
    method: str,
    fill_value: float | None = None,
    skipna: bool = True,
    *,
    parallel: bool = True,
) -> list[npt.NDArray[Any]]:
    """Reduce one tile to several coarser levels at once, each exact.

    Parameters
    ----------
    a
        Native-resolution tile (as for `block_reduce`).
    strides
        Cumulative strides, one per level, each dividing the next elementwise, e.g.
        ``[(2, 2), (4, 4), (8, 8)]``.
    method, fill_value, skipna
        As for `block_reduce`.
    parallel
        Split a large tile over the kernel's threads (rayon). ``False`` keeps the call on the
        calling thread: for callers that already run one call per core, where splitting again
        only oversubscribes the cores. The result is the same.

    Returns
    -------
    list of numpy.ndarray
        For each stride, what ``block_reduce(a, stride, ...)`` returns, except that only whole
        windows count: ``n // s`` per axis, possibly 0 (a tile at the raster's edge must not
        invent a window). Each level is built from the previous level's exact partial states
        (sum and count, running extreme and count, the top-left cell), never from rounded
        values, so it equals reducing the native cells directly.

    Raises
    ------
    ValueError, TypeError
        As for `block_reduce`; also strides that do not nest.
    """

@final
class Accumulator:
    """Partial states of one coarse level, folded in tile by tile.

    For the deep pyramid levels whose windows span several source tiles. Each `fold` adds a
    native-resolution tile; `result` finishes a region with the same rules as `block_reduce`
    (strict trim: the level's shape counts whole windows only).

    Parameters
    ----------
    shape
        Shape of the level, in level cells.
    dtype
        The *source* dtype (one of `DTYPES`); results use `block_reduce`'s output dtype.
    method, fill_value, skipna
        As for `block_reduce`.

    Raises
    ------
    MemoryError
        The level's states (`nbytes`) cannot be allocated.

    Notes
    -----
    For ``mode`` the states are exact sparse histograms, one sorted ``(value, count)`` list
    per level cell: `nbytes` grows with the number of distinct valid values per level cell
    (small for class maps, up to ~1.5x the folded cells' bytes for all-distinct floats).

    `fold` releases the GIL. One Accumulator must not be folded from two threads at once:
    callers serialise (a concurrent call raises a borrow error rather than racing).
    """

    def __new__(
        cls,
        shape: Sequence[int],
        dtype: npt.DTypeLike,
        method: str,
        fill_value: float | None = None,
        skipna: bool = True,
    ) -> Accumulator: ...
    def fold(
        self,
        a: npt.NDArray[Any],
        offset: Sequence[int],
        stride: Sequence[int],
        *,
        phase: Sequence[int] | None = None,
    ) -> None:
        """Add a native tile's cells to the level's partial states.

        Native cell ``i`` of ``a`` contributes to level cell ``offset + (i + phase) // stride``;
        contributions beyond the level's shape are ignored. A tile may cover windows only in
        part: the rest arrives from neighbouring tiles in later calls, in any order.

        Parameters
        ----------
        a
            Native tile of the accumulator's dtype and number of dimensions.
        offset
            Level cell containing the tile's first cell.
        stride
            Window size in native cells; the same in every call.
        phase
            How many native cells of that first window lie before the tile (``origin % stride``
            for a tile at native ``origin``); default zeros (window-aligned tiles).
        """

    def result(
        self, start: Sequence[int] | None = None, stop: Sequence[int] | None = None
    ) -> npt.NDArray[Any]:
        """Finished values of level cells ``[start, stop)`` (default: the whole level).

        Cells of windows some of whose native cells were never folded treat those cells as
        missing.
        """

    def export_states(self) -> bytes:
        """Every level cell's partial state, row-major, `state_bytes` little-endian bytes each.

        With `merge_states` in another process, partials cross machines (the cluster writer's
        deep levels). Not for ``mode`` (``ValueError``: its states are histograms).
        """

    def merge_states(
        self, data: bytes, shape: Sequence[int], offset: Sequence[int], stride: Sequence[int]
    ) -> None:
        """Merge exported states of an accumulator of the same dtype and method.

        ``data`` holds ``shape`` cells whose first is this accumulator's cell ``offset``
        (entries may be negative; cells outside this accumulator are ignored); ``stride`` is
        their window size in native cells and pins this accumulator's as a `fold` does.
        Merging is what folding their native cells here would give.
        """

    def coarsened(
        self, factor: Sequence[int], *, phase: Sequence[int] | None = None
    ) -> Accumulator:
        """A new accumulator of the states of windows of ``factor`` of this one's cells.

        Window ``j`` covers cells ``[j*factor - phase, (j+1)*factor - phase)``, partial windows
        included (``phase``: how many cells of the first window lie before this accumulator);
        its stride is this one's times ``factor``. Raises ``ValueError`` when nothing was
        folded or merged yet (no stride), and for ``mode``.
        """

    @property
    def state_bytes(self) -> int:
        """Bytes of one cell's state in `export_states` (0 for ``mode``: not exportable)."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the partial states."""

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the level in level cells."""

    @property
    def dtype(self) -> str:
        """Source dtype name."""

    @property
    def method(self) -> str:
        """Reduction method."""

def scrub_secrets(message: str, secrets: list[str]) -> str:
    """``message`` with every secret of at least four characters replaced by ``***``.

    The scrubber of the native writer's own error messages; topozarr's Python storage layer
    masks secrets with it too.
    """

@final
class NativeStore:
    """A storage target of the native writer (``io="rust"``) with its upload pool.

    Objects are stored in the background (at most ``max_inflight_bytes`` encoded but not yet
    stored); ``flush`` waits for them and raises the first failure. Storage errors are
    ``FileNotFoundError`` (no such key or bucket), ``PermissionError`` (denied, bad
    credentials), ``TimeoutError`` or ``OSError``; each names the key and none holds a secret.
    """

    @staticmethod
    def local(root: str, *, max_inflight_bytes: int) -> NativeStore:
        """A local directory (created if missing); each object is written to a temporary
        file and renamed into place."""

    @staticmethod
    def s3(
        bucket: str,
        prefix: str = "",
        *,
        config: dict[str, object] | None = None,
        client_options: dict[str, object] | None = None,
        max_inflight_bytes: int,
        max_retries: int = 10000,
        retry_timeout: float = 300.0,
        connect_timeout: float = 5.0,
        init_backoff: float | None = None,
        max_backoff: float | None = None,
    ) -> NativeStore:
        """An S3 bucket under ``prefix``. Credentials, endpoint and region come from the
        ``AWS_*`` environment variables; ``config`` (object_store / obstore S3 keys such as
        ``aws_endpoint``, ``aws_region``, ``aws_access_key_id``) and ``client_options``
        (``allow_http``, ``timeout``, ...) override them. Raises ``ValueError`` for an
        unknown key.

        Transient failures (5xx, 429, timeouts, dropped connections) are retried with
        exponential backoff and jitter for up to ``retry_timeout`` seconds per request
        (``max_retries`` is a backstop); ``init_backoff`` / ``max_backoff`` (seconds) default
        to 0.1 s and an eighth of the budget (0.2 s to 15 s). 4xx answers are not retried."""

    def open_array(self, path: str, metadata: bytes | None = None) -> NativeArray:
        """Open the array at ``path`` from its ``zarr.json`` (already written, e.g. by
        zarr-python). ``metadata``, when given, is that document's bytes and no request is
        made. Raises ``FileNotFoundError`` when it is missing, ``ValueError`` when its
        metadata or codecs are not supported."""

    def flush(self) -> None:
        """Wait for every upload so far; raise the first failure, if any."""

    @property
    def url(self) -> str:
        """``file://...`` or ``s3://bucket/prefix``."""

    @property
    def bytes_written(self) -> int:
        """Bytes of completed uploads."""

    @property
    def objects_written(self) -> int:
        """Number of completed uploads."""

@final
class NativeArray:
    """One array of a :class:`NativeStore`: encodes whole shards with its codec chain."""

    @property
    def path(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def shard_shape(self) -> tuple[int, ...]:
        """The outer chunk (shard) shape of the array's regular grid."""

    @property
    def itemsize(self) -> int: ...
    def write_shard(
        self, indices: Sequence[int], data: npt.NDArray[Any], group: UploadGroup | None = None
    ) -> None:
        """Encode shard ``indices`` from ``data`` (the C-ordered raw bytes of its in-bounds
        extent, ``block.view(np.uint8)``) and store it in the background. Edge shards are
        padded with the fill value; an all-fill shard deletes the key. ``group`` counts the
        upload until it has finished. Raises ``ValueError`` for a wrong index or byte count,
        or non-contiguous data."""

@final
class UploadGroup:
    """Background uploads that can be waited for on their own (one tile's shards)."""

    def __new__(cls) -> UploadGroup: ...
    @property
    def pending(self) -> int:
        """Uploads of the group not finished yet."""

    def wait(self) -> None:
        """Block until every upload of the group has finished; raise its first storage
        error (naming the key)."""

@final
class ShardEncoder:
    """One array's shard encoder without storage (the codec chain of its ``zarr.json``)."""

    def __new__(cls, path: str, metadata: bytes) -> ShardEncoder:
        """``metadata`` is the array's ``zarr.json`` document; ``ValueError`` when its data
        type or codecs are not supported."""

    @property
    def shard_shape(self) -> tuple[int, ...]: ...
    def key(self, indices: Sequence[int]) -> str:
        """The store key of shard ``indices``."""

    def encode(self, indices: Sequence[int], data: npt.NDArray[Any]) -> bytes | None:
        """The encoded shard, or ``None`` when every value is the fill value; ``data`` as for
        :meth:`NativeArray.write_shard`."""

@final
class ShardBuilder:
    """One array's shards built inner chunk by inner chunk: each chunk is encoded when it is
    put and only its bytes are kept until the shard is finished."""

    def __new__(cls, path: str, metadata: bytes) -> ShardBuilder:
        """``metadata`` is the array's ``zarr.json`` document; ``ValueError`` when the array is
        not sharded (one ``sharding_indexed`` codec) or its codecs are not supported."""

    @property
    def chunk_shape(self) -> tuple[int, ...]: ...
    @property
    def shard_shape(self) -> tuple[int, ...]: ...
    @property
    def open_shards(self) -> int:
        """Shards with a chunk put and not finished yet."""

    def key(self, indices: Sequence[int]) -> str:
        """The store key of shard ``indices``."""

    def put_chunk(self, shard: Sequence[int], chunk: Sequence[int], data: npt.NDArray[Any]) -> None:
        """Encode inner chunk ``chunk`` (its position in the shard) of shard ``shard``: ``data``
        is the whole chunk as C-ordered raw bytes (``block.view(np.uint8)``)."""

    def encode_chunk(self, data: npt.NDArray[Any]) -> bytes | None:
        """The encoded bytes of one whole inner chunk (as ``put_chunk`` takes it), not kept;
        ``None`` when it holds only the fill value."""

    def append_chunk(self, data: npt.NDArray[Any], file: ChunkFile) -> tuple[int, int] | None:
        """Encode one whole inner chunk (as ``encode_chunk`` takes it) and append it to
        ``file`` without the GIL; its ``(offset, nbytes)`` there, or ``None`` when it holds
        only the fill value (nothing written)."""

    def append_chunks(
        self, block: npt.NDArray[Any], origins: Sequence[Sequence[int]], file: ChunkFile
    ) -> list[tuple[int, int] | None]:
        """Cut the whole inner chunks whose first cells are at ``origins`` (cell indices)
        out of ``block`` (the values as raw bytes, ``values.view(np.uint8)``, any strides),
        encode each and append it to ``file`` as soon as it is encoded, in one call without
        the GIL. Each chunk's ``(offset, nbytes)`` there, ``None`` for a chunk of fill values
        only (nothing written); ``ValueError`` for a chunk not inside ``block``."""

    def finish(self, shard: Sequence[int]) -> bytes | None:
        """The encoded shard, or ``None`` when no chunk holds anything but the fill value."""

    def finish_to(
        self,
        shard: Sequence[int],
        array: NativeArray,
        group: UploadGroup | None = None,
        delete_empty: bool = True,
    ) -> bool:
        """Like :meth:`finish`, but stored through ``array``'s background uploads; an all-fill
        shard deletes the key when ``delete_empty`` (else nothing is stored). Returns whether
        a shard was stored."""

@final
class SourceArray:
    """A Zarr array (v3 or v2) in a local directory, opened for region reads decoded by zarrs.

    ``SourceArray(root, path="", *, concurrency=1)`` opens the array at ``path`` under the
    directory ``root``: ``ValueError`` if there is none or zarrs cannot decode its codecs,
    ``TypeError`` if its data type is not one of ``DTYPES``. ``concurrency`` is how many chunks
    zarrs decodes at once within one read (topozarr reads one tile per writer thread already).
    """

    def __new__(cls, root: str, path: str = "", *, concurrency: int = 1) -> SourceArray: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> str:
        """The numpy name of the stored data type (native byte order when read)."""

    def read(self, start: Sequence[int], stop: Sequence[int]) -> npt.NDArray[Any]:
        """A new C-ordered array of ``self[start:stop]`` (one bound per axis); missing chunks
        read as the array's fill value. The GIL is released while zarrs reads and decodes;
        ``ValueError`` for a region outside the array, ``OSError`` for a storage failure."""

__all__ = [
    "DTYPES",
    "MAX_NDIM",
    "METHODS",
    "SIMD",
    "Accumulator",
    "NativeArray",
    "NativeStore",
    "ShardBuilder",
    "ShardEncoder",
    "SourceArray",
    "UploadGroup",
    "__version__",
    "block_reduce",
    "method_table",
    "pyramid_tile",
]

@final
class ChunkFile:
    """A new file (the temporary file of a streamed shard) written at explicit offsets:
    appends land one after the other from ``start``; appends from several threads are
    serialised."""

    def __new__(cls, path: str | os.PathLike[str], start: int = 0) -> ChunkFile:
        """Creates ``path``; ``FileExistsError`` when it exists."""

    @property
    def end(self) -> int:
        """Offset past the last append."""

    def append(self, data: bytes) -> int:
        """Write ``data`` after the last append; returns its offset."""

    def write_at(self, data: bytes, at: int) -> None:
        """Write ``data`` at offset ``at`` (an index), leaving :attr:`end` where it is."""

    def close(self) -> None:
        """Close the file (later writes raise ``ValueError``); closing twice does nothing."""
