"""One exception root: everything topozarr raises itself derives from ``topozarr.TopozarrError``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import xproj  # noqa: F401

import topozarr

PACKAGES = ("topozarr", "topozarr_plan", "topozarr_engine", "topozarr_metadata")


def _own_exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of our Python packages (warnings aside)."""
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and not issubclass(obj, Warning)
                    and obj.__module__ == module.__name__
                ):
                    found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_class_derives_from_the_root() -> None:
    classes = _own_exception_classes()
    # The classes the packages are known to define: the walk must at least find them.
    assert {
        "topozarr.errors.UsageError",
        "topozarr_plan.errors.PlanError",
        "topozarr_engine.storage.exceptions.StoreError",
        "topozarr_engine.errors.TopozarrEngineError",
        "topozarr_metadata.errors.MetadataReadError",
    } <= set(classes)
    strays = sorted(n for n, c in classes.items() if not issubclass(c, topozarr.TopozarrError))
    assert strays == []


def test_root_and_branches_are_exported_and_keep_their_builtin_bases() -> None:
    assert topozarr.TopozarrError.__module__ == "topozarr_metadata.errors"
    assert issubclass(topozarr.PlanError, ValueError)
    assert issubclass(topozarr.UsageError, ValueError)
    assert issubclass(topozarr.MetadataReadError, ValueError)
    assert issubclass(topozarr.StoreError, OSError)
    for name in ("TopozarrError", "PlanError", "StoreError", "UsageError", "WriteStopped"):
        assert name in topozarr.__all__


def _tiny() -> xr.Dataset:
    ds = xr.Dataset(
        {"z": (("y", "x"), np.zeros((8, 8), "float32"))},
        coords={"y": np.arange(8.0), "x": np.arange(8.0)},
    )
    return ds.proj.assign_crs(spatial_ref="EPSG:4326")


def test_bad_input_is_caught_by_the_root_and_by_value_error() -> None:
    with pytest.raises(topozarr.TopozarrError, match="method"):
        topozarr.create_pyramid(_tiny(), levels=2, x_dim="x", y_dim="y", method="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        topozarr.create_pyramid(_tiny(), levels=2, x_dim="x", y_dim="y", method="median")  # type: ignore[arg-type]


def test_a_store_refusal_is_caught_by_the_root(tmp_path: Path) -> None:
    user_dir = tmp_path / "photos"
    user_dir.mkdir()
    (user_dir / "holiday.jpg").write_bytes(b"\xff\xd8")
    pyramid = topozarr.create_pyramid(_tiny(), levels=2, x_dim="x", y_dim="y")
    with pytest.raises(topozarr.TopozarrError):
        pyramid.write(str(user_dir))
    assert (user_dir / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_unreadable_metadata_is_caught_by_the_root() -> None:
    from topozarr_metadata import read_multiscales

    with pytest.raises(topozarr.TopozarrError):
        read_multiscales({"multiscales": {"no": "layout"}})
