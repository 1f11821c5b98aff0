import random

import duckdb
import pandas as pd
import pytest

from bulkimport.datasets import all_datasets, get_dataset, reload_datasets
from bulkimport.errors import DatasetInvalid, UnknownDataset
from bulkimport.stages.compile import compile_dataset, text_column, typed_column


def test_products_is_a_builtin_dataset_keyed_by_sku():
    ds = get_dataset("products")
    assert ds.key == ("sku",)
    assert {"sku", "name", "price", "currency", "stock", "ean", "launch_date"} == set(ds.columns)


def test_unknown_dataset_names_the_known_ones(home):
    with pytest.raises(UnknownDataset, match="known datasets: products"):
        get_dataset("prodcuts")


EANS = {
    "4006381333931": True,
    "5901234123457": True,
    "9780306406157": True,
    "0000000000000": True,
    "4006381333932": False,  # wrong check digit
    "5901234123450": False,
    "123": False,
    "400638133393": False,  # 12 digits
    "40063813339310": False,  # 14 digits
    "400638133393a": False,
    "4006381-33931": False,
    "４００６３８１３３３９３１": False,  # full-width digits are not ASCII digits
}


def _check_digit_variants() -> dict[str, bool]:
    """Twenty 12-digit bodies with each of the ten last digits: exactly one is the GS1 check digit."""
    rng = random.Random(13)
    variants = {}
    for _ in range(20):
        body = f"{rng.randrange(10**12):012d}"
        weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
        for last in range(10):
            variants[f"{body}{last}"] = last == (10 - weighted % 10) % 10
    return variants


def _pandera_says(codes: list[str]) -> list[bool]:
    """The products model's own ean13_check_digit check, as the careful path runs it."""
    column = get_dataset("products").schema.columns["ean"]
    [check] = [c for c in column.checks if c.name == "ean13_check_digit"]
    return check(column.dtype.coerce(pd.Series(codes))).check_output.tolist()


def _sql_says(codes: list[str]) -> list[bool]:
    """The ean column's compiled SQL (Dataset.sql_checks through stages.compile), as the fast path runs it."""
    column = compile_dataset(get_dataset("products")).columns["ean"]
    rows = duckdb.sql(
        f"WITH t AS (SELECT i, code AS {text_column('ean')} FROM (SELECT unnest($codes) AS code, "
        f"generate_subscripts($codes, 1) AS i)), "
        f"y AS (SELECT *, {column.typed} AS {typed_column('ean')} FROM t) "
        f"SELECT {column.ok} FROM y ORDER BY i",
        params={"codes": codes},
    ).fetchall()
    return [ok for (ok,) in rows]


@pytest.mark.parametrize("eans", [EANS, _check_digit_variants()], ids=["named", "every-last-digit"])
def test_the_ean_check_of_the_careful_and_the_fast_path_accept_exactly_the_valid_codes(eans):
    codes, expected = list(eans), list(eans.values())
    assert _pandera_says(codes) == expected
    assert _sql_says(codes) == expected


def test_datasets_can_be_added_from_a_folder(home, tmp_path, monkeypatch):
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "stores.py").write_text(
        "import pandera.pandas as pa\n"
        "from pandera.typing import Series\n"
        "from bulkimport.datasets import Dataset\n"
        "class Stores(pa.DataFrameModel):\n"
        "    store_id: Series[str]\n"
        "    city: Series[str]\n"
        "DATASET = Dataset(name='stores', description='Shops', model=Stores, key=('store_id',),\n"
        "                  sql_types={'store_id': 'VARCHAR', 'city': 'VARCHAR'}, required=('store_id', 'city'))\n"
    )
    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    assert set(all_datasets()) == {"products", "stores"}
    assert get_dataset("stores").key == ("store_id",)


def test_dataset_modules_run_once_and_again_when_their_file_changes(home, tmp_path, monkeypatch):
    folder = tmp_path / "extra"
    folder.mkdir()
    runs = tmp_path / "runs.txt"
    module = (
        f"open({str(runs)!r}, 'a').write('x')\n"
        "import pandera.pandas as pa\n"
        "from pandera.typing import Series\n"
        "from bulkimport.datasets import Dataset\n"
        "class Stores(pa.DataFrameModel):\n"
        "    store_id: Series[str]\n"
        "DATASET = Dataset(name='stores', description='Shops', model=Stores, key=('store_id',),\n"
        "                  sql_types={'store_id': 'VARCHAR'}, required=('store_id',))\n"
    )
    (folder / "stores.py").write_text(module)
    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    first = get_dataset("stores")
    assert get_dataset("stores") is first and all_datasets()["stores"] is first
    assert runs.read_text() == "x", "the module ran once"

    (folder / "stores.py").write_text(module.replace("'Shops'", "'Shops and outlets'").replace("'VARCHAR'", "'TEXT'"))
    changed = get_dataset("stores")
    assert changed.description == "Shops and outlets" and runs.read_text() == "xx"
    assert changed.version != first.version, "the definition changed (its SQL type), so its version did"
    reload_datasets()
    assert get_dataset("stores") is not changed and runs.read_text() == "xxx"


def test_a_broken_dataset_module_is_named_with_its_error(home, tmp_path, monkeypatch):
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "broken.py").write_text("import nothing_of_that_name\n")
    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    with pytest.raises(DatasetInvalid, match=r"broken.py does not load: ModuleNotFoundError.*datasets check"):
        all_datasets()
