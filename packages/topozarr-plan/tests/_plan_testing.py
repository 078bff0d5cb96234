"""Test helpers for topozarr-plan (a uniquely named module: tests run in importlib mode)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401  (registers .proj)

# dask and distributed are optional for topozarr-plan (the isolated nox session installs the
# member without them): tests that need them are marked.
HAS_DASK = importlib.util.find_spec("dask") is not None
requires_dask = pytest.mark.skipif(not HAS_DASK, reason="needs dask")


def make_dataset(
    ny: int = 64,
    nx: int = 96,
    *,
    crs: str = "EPSG:4326",
    north_up: bool = True,
    dtype: str = "float32",
    extra: dict[str, int] | None = None,
    y_dim: str = "y",
    x_dim: str = "x",
    res: float = 0.25,
    x0: float = -10.0,
    y_top: float = 50.0,
    name: str = "data",
    seed: int = 0,
) -> xr.Dataset:
    """A regular grid with cell centres, deterministic values and an xproj CRS."""
    extra = extra or {}
    rng = np.random.default_rng(seed)
    shape = (*extra.values(), ny, nx)
    dims = (*extra.keys(), y_dim, x_dim)
    if np.dtype(dtype).kind == "f":
        values = rng.normal(10, 5, size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -1000), min(info.max, 1000)
        values = rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    xs = x0 + res * (np.arange(nx) + 0.5)
    if north_up:
        ys = y_top - res * (np.arange(ny) + 0.5)
    else:
        ys = (y_top - res * ny) + res * (np.arange(ny) + 0.5)
    coords: dict[str, object] = {y_dim: ys, x_dim: xs}
    for d, n in extra.items():
        coords[d] = np.arange(n)
    ds = xr.Dataset({name: (dims, values, {"units": "K", "long_name": "test"})}, coords=coords)
    return ds.proj.assign_crs(spatial_ref=crs)


def assert_metadata_valid(pyramid) -> None:  # type: ignore[no-untyped-def]
    """Root and level-group attrs (and array dimension names) pass topozarr_metadata.validate.

    Call it last in a test: it skips when jsonschema (topozarr-metadata[validate]) is missing.
    """
    import topozarr_metadata as md

    pytest.importorskip("jsonschema")

    dimension_names = {
        f"{level}/{name}": [str(d) for d in tpl[name].dims]
        for level, tpl in pyramid.level_templates.items()
        for name in pyramid.encoding[f"/{level}"]
    }
    findings = md.validate(
        pyramid.attrs,
        level_attrs={str(k): v for k, v in pyramid.group_attrs.items()},
        dimension_names=dimension_names,
    )
    assert findings == [], findings


def assert_encoding_consistent(pyramid) -> None:  # type: ignore[no-untyped-def]
    """Every level/variable has chunks (and shards made of whole chunks) of the right rank."""
    assert set(pyramid.encoding) == {f"/{k}" for k in range(len(pyramid.factors))}
    for level in range(len(pyramid.factors)):
        tpl = pyramid.level_templates[level]
        for name, enc in pyramid.encoding[f"/{level}"].items():
            shape = tpl[name].shape
            chunks = enc["chunks"]
            assert len(chunks) == len(shape)
            assert all(1 <= c <= max(n, 1) for c, n in zip(chunks, shape, strict=True))
            if "shards" in enc:
                shards = enc["shards"]
                assert len(shards) == len(shape)
                assert all(s % c == 0 for s, c in zip(shards, chunks, strict=True)), enc
                inner = int(np.prod([s // c for s, c in zip(shards, chunks, strict=True)]))
                assert inner >= 1
