"""topozarr-plan test configuration.

Puts this directory on sys.path (tests run with --import-mode=importlib) so test modules can
import the uniquely named helper module ``_plan_testing``.
"""

from __future__ import annotations

import pathlib
import sys

_here = str(pathlib.Path(__file__).parent)
if _here not in sys.path:
    sys.path.insert(0, _here)
