import subprocess
import sys


def test_engine_does_not_import_xarray():
    code = "import sys, topozarr_engine; assert 'xarray' not in sys.modules, 'xarray imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
