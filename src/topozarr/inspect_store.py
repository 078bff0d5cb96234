"""Read a written pyramid back: a summary for `topozarr info`, and checks for `topozarr validate`.

The checks use zarr-python and numpy only, never the kernel that wrote the store, so they are an
independent witness of what the writer produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from topozarr.errors import UsageError


@dataclass(frozen=True)
class ArraySummary:
    """One array of one level, as `topozarr info` shows it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    dimension_names: tuple[str, ...]
    stored_bytes: int


@dataclass(frozen=True)
class LevelSummary:
    asset: str
    shape: tuple[int, int]
    bbox: tuple[float, ...]
    resampling_method: str | None
    arrays: tuple[ArraySummary, ...] = field(default_factory=tuple)


def _attrs(node: zarr.Group | zarr.Array) -> dict[str, Any]:
    """A node's attributes as a plain dict (zarr types them as a JSON union)."""
    return dict(node.attrs)


def _layout(root: zarr.Group) -> list[dict[str, Any]]:
    """The multiscales layout entries of the root group, or [] when there are none."""
    multiscales = _attrs(root).get("multiscales")
    return list(multiscales.get("layout") or []) if isinstance(multiscales, dict) else []


def _dims(arr: zarr.Array) -> list[str]:
    return [str(d) for d in getattr(arr.metadata, "dimension_names", None) or ()]


def _groups(root: zarr.Group) -> list[tuple[dict[str, Any], zarr.Group]]:
    """(layout entry, level group) for every layout asset that exists as a group."""
    out = []
    for entry in _layout(root):
        node = root.get(str(entry.get("asset", "")))
        if isinstance(node, zarr.Group):
            out.append((entry, node))
    return out


def open_root(store: Any) -> zarr.Group:
    """Open the pyramid's root group read-only, with a one-line error when it isn't one.

    ``s3://bucket/prefix`` is read through obstore with the ``AWS_*`` environment variables.
    """
    target = store
    if isinstance(store, str) and store.lower().startswith(("s3://", "s3a://")):
        from topozarr_plan.stores import s3_zarr_store  # lazy: it imports xarray

        target = s3_zarr_store(store, read_only=True)
    try:
        return zarr.open_group(target, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
        raise UsageError(
            f"{store!s} is not a Zarr group; give the path of a written pyramid"
        ) from err


def _array_summary(name: str, arr: zarr.Array) -> ArraySummary:
    shards = getattr(arr, "shards", None)
    return ArraySummary(
        name=name,
        shape=tuple(arr.shape),
        dtype=str(arr.dtype),
        chunks=tuple(arr.chunks),
        shards=tuple(shards) if shards else None,
        dimension_names=tuple(_dims(arr)),
        stored_bytes=int(arr.nbytes_stored()),
    )


def summarize(root: zarr.Group) -> dict[str, Any]:
    """Levels, shapes, chunks/shards, dtypes, CRS, bbox, method and stored bytes of a pyramid."""
    attrs = _attrs(root)
    if not _layout(root):
        raise UsageError("the store has no multiscales layout; is it a topozarr pyramid?")
    default_method = attrs["multiscales"].get("resampling_method")
    levels = []
    for entry, group in _groups(root):
        group_attrs = _attrs(group)
        arrays = tuple(
            _array_summary(name, arr) for name, arr in sorted(group.arrays(), key=lambda kv: kv[0])
        )
        levels.append(
            LevelSummary(
                asset=str(entry["asset"]),
                shape=tuple(entry.get("spatial:shape") or group_attrs.get("spatial:shape") or ()),
                bbox=tuple(group_attrs.get("spatial:bbox", ())),
                resampling_method=entry.get("resampling_method", default_method),
                arrays=arrays,
            )
        )
    return {
        "crs": attrs.get("proj:code") or "(WKT2 only)",
        "dims": attrs.get("spatial:dimensions"),
        "bbox": attrs.get("spatial:bbox"),
        "method": default_method,
        "levels": levels,
        "stored_bytes": sum(a.stored_bytes for lv in levels for a in lv.arrays),
    }


def _reference(window: np.ndarray, method: str, fill: Any) -> Any:
    """Reduce one native window with numpy, the way the pyramid's method defines it."""
    values = window.ravel()
    missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if fill is not None and not (isinstance(fill, float) and np.isnan(fill)):
        missing |= values == fill
    valid = values[~missing]
    if method == "nearest":
        return values[0]
    if method == "sum":
        return valid.sum() if valid.size else 0
    if valid.size == 0:
        return fill if fill is not None else np.nan
    if method == "max":
        return valid.max()
    if method == "min":
        return valid.min()
    if method == "mode":
        uniques, counts = np.unique(valid, return_counts=True)
        return uniques[np.argmax(counts)]  # np.unique sorts, so ties go to the smallest value
    mean = valid.astype(np.float64).mean()
    return np.round(mean) if values.dtype.kind in "iu" else mean


def _matches(got: Any, want: Any, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        if np.isnan(want):
            return bool(np.isnan(got))
        return bool(np.isclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, abs(float(want)))))
    return int(got) == int(want)


def sample_level_errors(
    root: zarr.Group, *, samples: int = 16, seed: int = 0
) -> list[tuple[str, str]]:
    """Compare random cells of every coarse level with its window of native (level 0) cells."""
    attrs = _attrs(root)
    default_method = attrs["multiscales"].get("resampling_method", "mean")
    ydim, xdim = attrs["spatial:dimensions"]
    levels = _groups(root)
    if not levels:
        return []
    base_entry, base = levels[0]
    rng = np.random.default_rng(seed)
    findings = []
    for entry, group in levels[1:]:
        asset = str(entry["asset"])
        factor = _cumulative_factor(entry, base_entry)
        method = entry.get("resampling_method", default_method)
        for name, arr in group.arrays():
            dims = _dims(arr)
            src = base.get(name)
            if ydim not in dims or xdim not in dims or not isinstance(src, zarr.Array):
                continue
            fill = arr.fill_value
            fill = None if fill is None else fill.item() if hasattr(fill, "item") else fill
            var_method = _attrs(arr).get("resampling_method", method)
            for _ in range(samples):
                idx = tuple(int(rng.integers(0, n)) for n in arr.shape)
                window = []
                for d, i in zip(dims, idx, strict=True):
                    window.append(slice(i * factor, (i + 1) * factor) if d in (ydim, xdim) else i)
                native = np.asarray(src[tuple(window)])
                want = _reference(native, var_method, fill)
                got = np.asarray(arr[idx])[()]
                if (
                    not _matches(got, want, arr.dtype)
                    and arr.dtype.kind in "iu"
                    and fill is not None
                    and _matches(got, _reference(native, var_method, None), arr.dtype)
                ):
                    # Zarr v3 always stores a fill_value (0 by default), so an integer array
                    # cannot tell whether it marks missing cells: no missing cells is valid too.
                    want = got
                if not _matches(got, want, arr.dtype):
                    findings.append(
                        (
                            f"{asset}/{name}{list(idx)}",
                            f"value {got!r} is not the {var_method} of its {factor}x{factor} "
                            f"native window ({want!r})",
                        )
                    )
                    break
    return findings


def _cumulative_factor(entry: dict[str, Any], base: dict[str, Any]) -> int:
    """The cumulative factor of a layout entry: its cell width over level 0's.

    Taken from the transforms, not the shapes, because trimmed shapes are not exact multiples.
    """
    return max(1, round(entry["spatial:transform"][0] / base["spatial:transform"][0]))


def consistency_errors(root: zarr.Group) -> list[tuple[str, str]]:
    """Check a store against its own metadata: assets exist, shapes and dimension names agree."""
    dims = _attrs(root).get("spatial:dimensions") or []
    findings: list[tuple[str, str]] = []
    names_per_level: list[set[str]] = []
    for i, entry in enumerate(_layout(root)):
        asset = str(entry.get("asset", ""))
        group = root.get(asset)
        if group is None:
            findings.append((f"multiscales.layout[{i}]", f"asset {asset!r} is not in the store"))
            continue
        if not isinstance(group, zarr.Group):
            findings.append((f"multiscales.layout[{i}]", f"asset {asset!r} is not a group"))
            continue
        shape = entry.get("spatial:shape")
        spatial = set()
        for name, arr in group.arrays():
            names = _dims(arr)
            if not names:
                # A 0-d array (e.g. the CRS coordinate) has no dimensions to name.
                if arr.ndim:
                    findings.append((f"{asset}/{name}", "array has no dimension_names"))
                continue
            if all(d in names for d in dims):
                spatial.add(name)
                got = [arr.shape[names.index(d)] for d in dims]
                if shape and got != list(shape):
                    findings.append(
                        (f"{asset}/{name}", f"shape {got} differs from spatial:shape {shape}")
                    )
        names_per_level.append(spatial)
    if names_per_level and any(s != names_per_level[0] for s in names_per_level):
        findings.append(("multiscales.layout", "levels hold different spatial variables"))
    return findings


def dimension_names(root: zarr.Group) -> dict[str, list[str]]:
    """Map every array path ("0/elevation") to its dimension_names, for metadata validation."""
    return {
        f"{entry['asset']}/{name}": _dims(arr)
        for entry, group in _groups(root)
        for name, arr in group.arrays()
    }


def level_group_attrs(root: zarr.Group) -> dict[str, dict[str, Any]]:
    """Attributes of every level group, keyed by asset."""
    return {str(entry["asset"]): _attrs(group) for entry, group in _groups(root)}
