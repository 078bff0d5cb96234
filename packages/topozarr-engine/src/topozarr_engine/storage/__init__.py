"""topozarr's storage layer: every store adapter, in one place.

- :mod:`.urls`: the one URL parser (``s3://``, ``file://``, plain paths).
- :mod:`.target`: :func:`resolve_target`, what a user's store argument becomes, and
  :class:`StorageTarget` (capabilities, the native writer, pickling via :mod:`.reopen`).
- :mod:`.s3`: S3 stores from the ``AWS_*`` environment; :mod:`.retry` their retry budget.
- :mod:`.errors`: the one error translator (``StoreError``); :mod:`.secrets` the one scrubber.
- :mod:`.native` / :mod:`.native_config`: the kernel's native writer and where it writes.
- :mod:`.sinks`: the :class:`ShardSink` protocol both write paths implement.
- :mod:`.shard_stream` / :mod:`.shard_index`: shards streamed chunk by chunk to a local
  directory (temporary file, index, rename), and the removal of those a write left behind.

docs/design.md ("Adding a storage backend") walks a new backend through these files.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from topozarr_engine.storage.errors import store_errors, translate_store_error
    from topozarr_engine.storage.exceptions import StorageConfigError, StoreError
    from topozarr_engine.storage.native import DEFAULT_MAX_INFLIGHT_BYTES, NativeWriter
    from topozarr_engine.storage.target import (
        StorageTarget,
        open_for_reading,
        open_object_store,
        resolve_target,
    )
    from topozarr_engine.storage.urls import StoreURL, is_s3_url, parse_url

# Imported on first use: ``import topozarr_engine`` (whose region sinks import ``.sinks``)
# should not pay for zarr's store classes.
_EXPORTS = {
    "store_errors": "errors",
    "translate_store_error": "errors",
    "StorageConfigError": "exceptions",
    "StoreError": "exceptions",
    "DEFAULT_MAX_INFLIGHT_BYTES": "native",
    "NativeWriter": "native",
    "StorageTarget": "target",
    "open_for_reading": "target",
    "open_object_store": "target",
    "resolve_target": "target",
    "StoreURL": "urls",
    "is_s3_url": "urls",
    "parse_url": "urls",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_MAX_INFLIGHT_BYTES",
    "NativeWriter",
    "StorageConfigError",
    "StorageTarget",
    "StoreError",
    "StoreURL",
    "is_s3_url",
    "open_for_reading",
    "open_object_store",
    "parse_url",
    "resolve_target",
    "store_errors",
    "translate_store_error",
]
