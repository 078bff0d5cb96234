"""`topozarr preview` in headless Chromium: the demo pyramid drawn by the bundled zarr-layer.

Pixels are checked against the data read back with zarr-python at the lon/lat each pixel
shows (Web Mercator math done here) and the level zarr-layer's documented rule picks, so north
up, east right, the level and the colour scale are each checked. Chromium is Debian's
``chromium`` (``.ci/run`` installs it); WebGL runs on SwiftShader.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

sys.path.insert(0, str(Path(__file__).parent))

from cdp import Chromium, Page

from topozarr import create_pyramid
from topozarr.cli import main
from topozarr.demo import demo_dataset
from topozarr.preview import PreviewServer
from topozarr.preview.colormaps import colormap_rgb
from topozarr.preview.digest import RECORD, bundle_digests, sources_digest
from topozarr.preview.server import static_files

ROOT = Path(__file__).resolve().parents[1]
# A map under 512 px each way: MapLibre zooms out only while the world (512 px at zoom 0)
# still covers the map, and the test needs zoom 0.
WIDTH, HEIGHT = 780, 500
MAP_WIDTH = WIDTH - 280  # the panel takes the right 280 px
ZOOMS = (0.0, 1.0, 2.0)
CENTER = (15.0, 10.0)  # lon, lat: off the axes, so a mirrored picture cannot match
BACKGROUND = np.array([0x1D, 0x23, 0x30])
# Mean colour error (out of 255) allowed for the right picture: colour-table rounding. Measured:
# 0.03-0.6 for the expected level, 0.6-3 for its neighbours, 5-50 for mirror images.
TOLERANCE = 1.0


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("preview") / "demo.zarr"
    ds = demo_dataset(512)  # levels 1024, 512 and 256 cells wide
    create_pyramid(ds, levels=3, x_dim="lon", y_dim="lat").write(str(path), progress=False)
    return path


@pytest.fixture(scope="module")
def server(pyramid: Path) -> Iterator[PreviewServer]:
    srv = PreviewServer(str(pyramid))
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chrome = Chromium(tmp_path_factory.mktemp("chromium"), WIDTH, HEIGHT)
    yield chrome
    chrome.close()


def _open(browser: Chromium, url: str) -> Page:
    page = browser.new_page()
    for domain in ("Runtime", "Network", "Log", "Page"):
        page.send(f"{domain}.enable")
    page.send("Page.navigate", url=url)
    page.wait_for("window.__preview && window.__preview.ready")
    return page


@pytest.fixture(scope="module")
def page(browser: Chromium, server: PreviewServer) -> Page:
    page = _open(browser, server.url)
    page.evaluate("window.__preview.settled()")
    return page


# ----------------------------------------------------------------------------- references


def _level_arrays(pyramid: Path, variable: str) -> list[dict[str, Any]]:
    root = zarr.open_group(str(pyramid), mode="r")
    out = []
    for entry in root.attrs["multiscales"]["layout"]:
        group = root[entry["asset"]]
        out.append(
            {
                "values": np.asarray(group[variable][...]),
                "lat": np.asarray(group["lat"][...]),
                "lon": np.asarray(group["lon"][...]),
            }
        )
    return out


def _expected_level(levels: list[dict[str, Any]], zoom: float) -> int:
    """zarr-layer's rule: the coarsest level at least 256 * 2**zoom cells across the world."""
    widths = [lv["lon"].size for lv in levels]  # the grid spans 360 degrees: fraction 1
    fine_enough = [i for i, w in enumerate(widths) if w >= 256 * 2**zoom]
    return min(fine_enough, key=lambda i: widths[i]) if fine_enough else int(np.argmax(widths))


def _pixel_lonlat(
    view: dict[str, float], w: int, h: int, at: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """lon, lat at every pixel of a Web Mercator map (512-pixel world at zoom 0); ``at`` 0.5
    is the pixel's centre (what is drawn there), 0 its corner (where a mouse event lands)."""
    world = 512 * 2 ** view["zoom"]
    x0 = (view["lon"] + 180) / 360
    y0 = (1 - math.log(math.tan(math.pi / 4 + math.radians(view["lat"]) / 2)) / math.pi) / 2
    xs = x0 + (np.arange(w) + at - w / 2) / world
    ys = y0 + (np.arange(h) + at - h / 2) / world
    lon = np.broadcast_to(xs * 360 - 180, (h, w))
    lat = np.broadcast_to(np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * ys))))[:, None], (h, w))
    return lon, lat


def _cells(level: dict[str, Any], lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Row, column and a 'well inside one cell' mask for each lon/lat."""
    dlon = level["lon"][1] - level["lon"][0]
    dlat = level["lat"][0] - level["lat"][1]  # latitude descends: row 0 is north
    col = (lon - (level["lon"][0] - dlon / 2)) / dlon
    row = ((level["lat"][0] + dlat / 2) - lat) / dlat
    inside = (col >= 0) & (col < level["lon"].size) & (row >= 0) & (row < level["lat"].size)
    central = (np.abs(col % 1 - 0.5) < 0.4) & (np.abs(row % 1 - 0.5) < 0.4)
    return row.astype(int), col.astype(int), inside & central


def _colours(values: np.ndarray, clim: list[float]) -> np.ndarray:
    table = colormap_rgb("viridis").astype(int)
    t = np.clip((values - clim[0]) / (clim[1] - clim[0]), 0, 1)
    rgb = table[np.rint(np.nan_to_num(t) * 255).astype(int)]
    rgb[np.isnan(values)] = BACKGROUND
    return rgb


def _away_from_graticule(lon: np.ndarray, lat: np.ndarray, zoom: float) -> np.ndarray:
    """Pixels more than 3 px from the 30-degree graticule (drawn under the data's gaps)."""
    px_per_degree = 512 * 2**zoom / 360
    near_lon = np.abs((lon + 15) % 30 - 15) * px_per_degree < 3
    near_lat = np.abs((lat + 15) % 30 - 15) * px_per_degree / np.cos(np.radians(lat)) < 3
    return ~near_lon & ~near_lat & (np.abs(lat) < 84)


def _canvas(page: Page) -> np.ndarray:
    script = """(() => {
      const c = window.__preview.map.getCanvas();
      const off = document.createElement('canvas');
      off.width = c.width; off.height = c.height;
      const g = off.getContext('2d'); g.drawImage(c, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let s = '';
      for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
      return [c.width, c.height, btoa(s)];
    })()"""
    w, h, data = page.evaluate(script)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)[..., :3].astype(int)


def _view(page: Page, zoom: float) -> dict[str, float]:
    page.evaluate(
        f"void window.__preview.map.jumpTo({{center: [{CENTER[0]}, {CENTER[1]}], zoom: {zoom}}})"
    )
    settled = page.evaluate("window.__preview.settled()")
    centre = page.evaluate(
        "(() => { const c = window.__preview.map.getCenter(); return [c.lng, c.lat]; })()"
    )
    return {"lon": centre[0], "lat": centre[1], "zoom": zoom, "level": settled["level"]}


def _match(pixels: np.ndarray, expected: np.ndarray, mask: np.ndarray) -> float:
    """Mean colour error (largest channel difference, out of 255) over the masked pixels."""
    return float(np.abs(pixels - expected).max(axis=-1)[mask].mean())


def _score(
    page: Page, levels: list[dict[str, Any]], clim: list[float], index: Any, expected: int
) -> dict[Any, float]:
    """Match of the canvas against each level and against mirror images of the expected one,
    over the pixels whose centre is well inside a cell of the expected level."""
    pixels = _canvas(page)
    view = page.evaluate("[window.__preview.map.getZoom(), window.__preview.map.getCenter()]")
    v = {"zoom": view[0], "lon": view[1]["lng"], "lat": view[1]["lat"]}
    lon, lat = _pixel_lonlat(v, pixels.shape[1], pixels.shape[0])
    mask = _cells(levels[expected], lon, lat)[2] & _away_from_graticule(lon, lat, v["zoom"])
    scores: dict[Any, float] = {}
    for k, level in enumerate(levels):
        row, col, _ = _cells(level, lon, lat)
        grid = level["values"][index]
        n_rows, n_cols = grid.shape
        r, c = np.clip(row, 0, n_rows - 1), np.clip(col, 0, n_cols - 1)
        scores[k] = _match(pixels, _colours(grid[r, c], clim), mask)
        if k == expected:
            scores["mirrored-ns"] = _match(pixels, _colours(grid[n_rows - 1 - r, c], clim), mask)
            scores["mirrored-ew"] = _match(pixels, _colours(grid[r, n_cols - 1 - c], clim), mask)
    return scores


def _config(server: PreviewServer, name: str) -> dict[str, Any]:
    return next(v for v in server.config["variables"] if v["name"] == name)


# ----------------------------------------------------------------------------- tests


def test_shipped_bundle_matches_its_sources() -> None:
    """static/ is what `nox -s preview_bundle` builds from preview-js/ and its lock file."""
    static = Path(str(static_files()))
    record = json.loads((static / RECORD).read_text())
    assert record["sources"] == sources_digest(ROOT / "preview-js"), (
        "preview-js/ changed since the bundle was built: run `uv run nox -s preview_bundle`"
    )
    assert record["bundle"] == bundle_digests(static), "static/ differs from the build output"


def test_store_served_with_ranges_and_cors(server: PreviewServer, pyramid: Path) -> None:
    key = "0/elevation/c/0/0"
    whole = (pyramid / key).read_bytes()

    def get(path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(server.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), b""

    status, headers, body = get(f"store/{key}", Range="bytes=-20")
    assert (status, body) == (206, whole[-20:])
    assert headers["Content-Range"] == f"bytes {len(whole) - 20}-{len(whole) - 1}/{len(whole)}"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert get(f"store/{key}", Range="bytes=5-9")[2] == whole[5:10]
    assert get(f"store/{key}")[2] == whole
    assert get(f"store/{key}", Range=f"bytes={len(whole)}-")[0] == 416
    assert get("store/0/elevation/c/9/9")[0] == 404
    assert get("store/../../etc/passwd")[0] == 404


def test_default_range_is_robust_range_of_coarsest_level(
    server: PreviewServer, pyramid: Path
) -> None:
    coarsest = _level_arrays(pyramid, "elevation")[-1]["values"]
    expected = np.nanpercentile(coarsest.astype(np.float64), [2, 98])
    np.testing.assert_allclose(_config(server, "elevation")["clim"], expected)


def test_page_loads_offline_without_errors(page: Page, server: PreviewServer) -> None:
    page.evaluate("window.__preview.settled()")
    page.send("Runtime.evaluate", expression="1")  # drain pending events
    errors = [
        e["params"]
        for e in page.events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    urls = [
        e["params"]["request"]["url"]
        for e in page.events
        if e["method"] == "Network.requestWillBeSent"
    ]
    assert any("/store/" in u for u in urls)
    local = ("http://127.0.0.1:", "data:", "blob:")
    assert [u for u in urls if not u.startswith(local)] == []
    assert all(u.startswith(server.url) for u in urls if u.startswith("http"))


@pytest.mark.parametrize("zoom", ZOOMS)
def test_pixels_show_the_data_at_the_level_zarr_layer_picks(
    page: Page, server: PreviewServer, pyramid: Path, zoom: float
) -> None:
    page.evaluate("window.__preview.showVariable('elevation')")
    levels = _level_arrays(pyramid, "elevation")
    view = _view(page, zoom)
    assert page.evaluate("window.__preview.map.getZoom()") == zoom
    expected = _expected_level(levels, zoom)
    assert view["level"] == expected
    assert page.evaluate("document.getElementById('level').textContent") == str(expected)
    scores = _score(page, levels, _config(server, "elevation")["clim"], ..., expected)
    assert scores[expected] < TOLERANCE, scores
    others = {k: s for k, s in scores.items() if k != expected}
    assert min(others.values()) > 3 * scores[expected], scores
    if zoom == 1.0:  # the screenshot in docs/cli.md: land, the legend and the level
        png = page.send("Page.captureScreenshot", format="png")["data"]
        (ROOT / "docs" / "preview.png").write_bytes(base64.b64decode(png))


def test_picker_and_time_slider(page: Page, server: PreviewServer, pyramid: Path) -> None:
    page.evaluate(
        "(() => { const s = document.getElementById('variable'); s.value = 'temperature';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    view = _view(page, 1.0)
    levels = _level_arrays(pyramid, "temperature")
    clim = _config(server, "temperature")["clim"]
    level = view["level"]
    assert _score(page, levels, clim, 0, level)[level] < TOLERANCE
    page.evaluate(
        "(() => { const i = document.getElementById('dim-time'); i.value = '3';"
        " i.dispatchEvent(new Event('input')); })()"
    )
    page.evaluate("window.__preview.settled()")
    scores_t3 = _score(page, levels, clim, 3, level)
    assert scores_t3[level] < TOLERANCE, scores_t3
    assert _score(page, levels, clim, 0, level)[level] > 3 * scores_t3[level] + 1
    label = page.evaluate("document.getElementById('dim-time-label').textContent")
    assert label == str(np.datetime64("2000-04-01", "D"))


def test_readout_shows_the_value_under_the_cursor(page: Page, pyramid: Path) -> None:
    page.evaluate("window.__preview.showVariable('elevation')")
    view = _view(page, 2.0)
    levels = _level_arrays(pyramid, "elevation")
    level = levels[view["level"]]
    lon, lat = _pixel_lonlat(view, MAP_WIDTH, HEIGHT, at=0.0)  # mouse events land on integers
    row, col, ok = _cells(level, lon, lat)
    values = level["values"][np.clip(row, 0, None), np.clip(col, 0, None)]
    candidates = np.argwhere(ok & np.isfinite(values))
    y, x = candidates[len(candidates) // 3]
    page.evaluate("document.getElementById('readout').dataset.value = 'pending'")
    page.send("Input.dispatchMouseEvent", type="mouseMoved", x=int(x), y=int(y))
    shown = page.wait_for(
        "(() => { const v = document.getElementById('readout').dataset.value;"
        " return v !== 'pending' && v; })()"
    )
    assert float(shown) == pytest.approx(float(values[y, x]), rel=1e-6)
    assert "elevation =" in page.evaluate("document.getElementById('readout').textContent")


def test_undrawable_crs_is_reported(tmp_path: Path, browser: Chromium) -> None:
    path = tmp_path / "odd.zarr"
    ds = demo_dataset(16)
    create_pyramid(ds, levels=1, x_dim="lon", y_dim="lat").write(str(path), progress=False)
    root = zarr.open_group(str(path), mode="r+")
    attrs = dict(root.attrs)
    for key in ("proj:wkt2", "proj:projjson"):
        attrs.pop(key, None)
    attrs["proj:code"] = "EPSG:999999"
    root.attrs.put(attrs)
    srv = PreviewServer(str(path))
    assert srv.config["drawable"] is False
    assert "cannot draw EPSG:999999" in srv.config["problem"]
    srv.start()
    try:
        page = _open(browser, srv.url)
        text = page.evaluate("document.getElementById('problem').textContent")
        assert "cannot draw EPSG:999999" in text
    finally:
        srv.shutdown()
        srv.server_close()


def test_cli_preview_and_build_preview(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        "topozarr.preview.serve_preview", lambda store, **kw: calls.append((store, kw))
    )
    src = tmp_path / "src.zarr"
    demo_dataset(16).to_zarr(src, consolidated=False)
    dst = tmp_path / "out.zarr"
    assert (
        main(["build", str(src), str(dst), "--crs", "EPSG:4326", "--preview", "--no-progress"]) == 0
    )
    assert main(["preview", str(dst), "--var", "temperature", "--port", "0", "--no-open"]) == 0
    assert calls == [
        (str(dst), {}),
        (str(dst), {"variable": "temperature", "port": 0, "open_browser": False}),
    ]


def test_zarr_layer_decodes_a_uint8_class_map_at_its_default_codec(
    tmp_path: Path, browser: Chromium
) -> None:
    # 1-byte variables default to zstd: the readout is zarr-layer's zarrita decoding it.
    path = tmp_path / "classes.zarr"
    ds = demo_dataset(128)[["elevation"]]
    classes = (np.arange(ds.sizes["lat"])[:, None] * 7 + np.arange(ds.sizes["lon"]) * 3) % 13
    ds["classes"] = (("lat", "lon"), (classes + 1).astype(np.uint8))
    method = {"elevation": "mean", "classes": "nearest"}
    create_pyramid(ds, levels=2, x_dim="lon", y_dim="lat", method=method).write(str(path))
    root = zarr.open_group(str(path), mode="r")
    assert type(root["0/classes"].compressors[0]).__name__ == "ZstdCodec"
    srv = PreviewServer(str(path))
    srv.start()
    try:
        page = _open(browser, srv.url)
        page.evaluate("window.__preview.settled()")
        page.evaluate("window.__preview.showVariable('classes')")
        view = _view(page, 2.0)
        level = _level_arrays(path, "classes")[view["level"]]
        lon, lat = _pixel_lonlat(view, MAP_WIDTH, HEIGHT, at=0.0)
        row, col, ok = _cells(level, lon, lat)
        values = level["values"][np.clip(row, 0, None), np.clip(col, 0, None)]
        candidates = np.argwhere(ok)
        for y, x in candidates[[10, len(candidates) // 2, -10]]:
            page.evaluate("document.getElementById('readout').dataset.value = 'pending'")
            page.send("Input.dispatchMouseEvent", type="mouseMoved", x=int(x), y=int(y))
            shown = page.wait_for(
                "(() => { const v = document.getElementById('readout').dataset.value;"
                " return v !== 'pending' && v; })()"
            )
            assert float(shown) == float(values[y, x])
    finally:
        srv.shutdown()
        srv.server_close()
