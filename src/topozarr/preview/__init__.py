"""``topozarr preview``: a pyramid on a web map (MapLibre + zarr-layer) served from this machine.

The page and its JavaScript ship in ``static/`` (built from ``preview-js/`` by
``nox -s preview_bundle``), so viewing needs neither Node nor the internet.
"""

from topozarr.preview.server import PreviewServer, serve_preview

__all__ = ["PreviewServer", "serve_preview"]
