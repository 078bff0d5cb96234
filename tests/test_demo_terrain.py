"""FractalTerrain's land fraction: the share of non-NaN cells follows the parameter."""

from __future__ import annotations

import numpy as np
import pytest

from topozarr.demo import FractalTerrain


@pytest.mark.parametrize("land_fraction", [0.3, 0.7])
def test_land_fraction_sets_share_of_valid_cells(land_fraction: float) -> None:
    band = FractalTerrain(128, 256, seed=3, land_fraction=land_fraction).band(0, 128)
    assert abs(float(np.mean(~np.isnan(band))) - land_fraction) < 0.05


def test_default_keeps_thirty_percent_land() -> None:
    default = FractalTerrain(64, 128, seed=5).band(0, 64)
    explicit = FractalTerrain(64, 128, seed=5, land_fraction=0.3).band(0, 64)
    np.testing.assert_array_equal(default, explicit)
    assert abs(float(np.mean(~np.isnan(default))) - 0.3) < 0.05


def test_relief_is_band_before_sea_level() -> None:
    terrain = FractalTerrain(64, 128, seed=5)
    relief = terrain.relief(8, 40)
    expected = (relief - terrain.sea_level) * np.float32(2500.0)
    expected = np.where(expected > 0, expected, np.nan)
    np.testing.assert_array_equal(terrain.band(8, 40), expected.astype(np.float32))


def test_land_fraction_out_of_range_is_one_line_error() -> None:
    with pytest.raises(ValueError, match="land_fraction must be in"):
        FractalTerrain(16, 32, land_fraction=0.0)
