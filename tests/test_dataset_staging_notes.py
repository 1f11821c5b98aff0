"""`bulkimport datasets check` says how a dataset stages: the fast path's SQL, checks in Python, or the careful path."""

from __future__ import annotations

from tests.conftest import run_cli

MODULE = """
import pandera.pandas as pa
from pandera.typing import Series

from bulkimport.datasets import Dataset


class Stores(pa.DataFrameModel):
    code: Series[str] = pa.Field(str_matches=r"^S[0-9]{3}$")
    city: Series[str] = pa.Field(str_length={"min_value": 2})

    @pa.check("city", name="not_shouting")
    def city_is_not_all_capitals(cls, city: Series[str]) -> Series[bool]:
        return city != city.str.upper()

    class Config:
        coerce = True


DATASET = Dataset(
    name="stores", description="Shops.", model=Stores, key=("code",),
    sql_types={"code": "VARCHAR", "city": "VARCHAR"}, required=("code", "city"),
)
"""


def test_datasets_check_names_the_checks_that_run_outside_the_fast_paths_sql(home, tmp_path):
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "stores.py").write_text(MODULE)
    result = run_cli("datasets", "check", str(folder))
    assert result.returncode == 0, result.stderr
    assert "ok    stores.py (dataset stores)" in result.stdout
    assert "column 'city': check 'not_shouting' runs in Python" in result.stdout


def test_datasets_check_says_when_every_check_compiles(home):
    result = run_cli("datasets", "check")
    assert result.returncode == 0, result.stderr
    assert "every check compiles to the staging fast path" in result.stdout
