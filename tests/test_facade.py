"""`import bulkimport as bi`: the lazy facade offers exactly the API's names, and loads nothing until one is used."""

from __future__ import annotations

import subprocess
import sys

import bulkimport
from bulkimport import api


def test_the_facade_lists_every_name_of_the_api_and_the_error_base():
    assert set(bulkimport.__all__) == {*api.__all__, "BulkImportError"}
    for name in api.__all__:
        assert getattr(bulkimport, name) is getattr(api, name)


def test_importing_the_facade_loads_no_heavy_library():
    code = "import sys, bulkimport; print(sorted(m for m in ('pandas', 'duckdb', 'pandera') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
