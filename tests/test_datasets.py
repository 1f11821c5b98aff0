import pytest

from bulkimport.datasets import all_datasets, get_dataset
from bulkimport.datasets.products import ean13_is_valid
from bulkimport.errors import UnknownDataset


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
