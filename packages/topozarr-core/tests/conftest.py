"""Makes the independent numpy reference (`_core_reference.py`) importable from the tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
