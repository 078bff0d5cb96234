"""Pyramid.write delegates to topozarr_plan.writer.write_pyramid with every option."""

from __future__ import annotations

import dataclasses
import sys
import types
from typing import Any

import pytest
from _plan_testing import make_dataset
from topozarr_plan import create_pyramid


def test_write_forwards_all_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_write_pyramid(pyramid: Any, store: Any, options: Any) -> dict[str, Any]:
        calls.append((pyramid, store, dataclasses.asdict(options)))
        return {"ok": True}

    fake = types.ModuleType("topozarr_plan.writer")
    fake.write_pyramid = fake_write_pyramid  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "topozarr_plan.writer", fake)
    p = create_pyramid(make_dataset(32, 32), levels=2)
    out = p.write(
        "store.zarr",
        mode="a",
        max_workers=3,
        levels=[1],
        max_region_bytes=1024,
        progress=True,
        stats=True,
        keep_levels_in_memory=False,
        io="rust",
        resume=True,
        append_dim="time",
    )
    assert out == {"ok": True}
    assert calls == [
        (
            p,
            "store.zarr",
            {
                "mode": "a",
                "max_workers": 3,
                "levels": [1],
                "max_region_bytes": 1024,
                "progress": True,
                "stats": True,
                "keep_levels_in_memory": False,
                "io": "rust",
                "resume": True,
                "append_dim": "time",
                "client": None,
            },
        )
    ]


def test_write_roundtrip(tmp_path: Any) -> None:
    """End-to-end through the engine's writer (when it is importable)."""
    import numpy as np
    import xarray as xr

    pytest.importorskip("topozarr_plan.writer")
    ds = make_dataset(67, 45, extra={"time": 2})
    p = create_pyramid(ds, levels=3)
    p.write(tmp_path / "p.zarr")
    expected = p.as_datatree()
    back = xr.open_datatree(tmp_path / "p.zarr", engine="zarr")
    for level in range(3):
        np.testing.assert_allclose(
            back[str(level)]["data"].values, expected[str(level)]["data"].values, rtol=1e-6
        )
    assert dict(back.attrs)["multiscales"] == p.attrs["multiscales"]
