"""topozarr-plan test configuration.

Puts this directory on sys.path (tests run with --import-mode=importlib) so test modules can
import the uniquely named helper modules, and installs the numpy kernel stand-in only when
the compiled kernel is not importable.
"""

from __future__ import annotations

import pathlib
import sys

_here = str(pathlib.Path(__file__).parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

import _plan_numpy_kernel  # noqa: E402

USING_SHIM = _plan_numpy_kernel.install_if_missing()
