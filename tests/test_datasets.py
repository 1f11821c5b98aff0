import pytest

from bulkimport.datasets import all_datasets, get_dataset, reload_datasets
from bulkimport.datasets.products import ean13_is_valid
from bulkimport.errors import DatasetInvalid, UnknownDataset


def test_products_is_a_builtin_dataset_keyed_by_sku():
    ds = get_dataset("products")
    assert ds.key == ("sku",)
    assert {"sku", "name", "price", "currency", "stock", "ean", "launch_date"} == set(ds.columns)


def test_unknown_dataset_names_the_known_ones(home):
    with pytest.raises(UnknownDataset, match="known datasets: products"):
        get_dataset("prodcuts")


@pytest.mark.parametrize(
    "code, valid",
    [
        ("4006381333931", True),
        ("4006381333932", False),
        ("5901234123457", True),
        ("123", False),
        ("400638133393a", False),
    ],
)
def test_ean13_check_digit(code, valid):
    assert ean13_is_valid(code) is valid


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
