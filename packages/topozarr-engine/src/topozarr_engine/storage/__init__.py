"""topozarr's storage layer: every store adapter, in one place.

- :mod:`.urls`: the one URL parser (``s3://``, ``file://``, plain paths).
- :mod:`.target`: :func:`resolve_target`, what a user's store argument becomes, and
  :class:`StorageTarget` (capabilities, the native writer, pickling via :mod:`.reopen`).
- :mod:`.s3`: S3 stores from the ``AWS_*`` environment; :mod:`.retry` their retry budget.
- :mod:`.errors`: the one error translator (``StoreError``); :mod:`.secrets` the one scrubber.
- :mod:`.native` / :mod:`.native_config`: the kernel's native writer and where it writes.
- :mod:`.sinks`: the :class:`ShardSink` protocol both write paths implement.

docs/design.md ("Adding a storage backend") walks a new backend through these files.
"""

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
