"""A dataset drafted from a sample file, by the real command: it loads, passes `datasets check`, and the sample
staged against it into a real lake has no rejected row. `datasets check` refuses broken modules with reasons."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest

from bulkimport import dataset_draft, lake, registry
from bulkimport.datasets import get_dataset
from bulkimport.stages.review import staged_rows
from bulkimport.stages.stage import stage_file
from tests.conftest import EXAMPLE, REPO, run_cli

SAMPLES = REPO / "tests" / "data" / "drafts"


def draft(tmp_path: Path, name: str, sample: Path) -> tuple[Path, str]:
    folder = tmp_path / "drafts"
    folder.mkdir(exist_ok=True)
    target = folder / f"{name}.py"
    result = run_cli("datasets", "draft", name, "--from", str(sample), "-o", str(target))
    assert "pass it" in result.stderr
    return folder, target.read_text(encoding="utf-8")


def stage_sample(name: str, sample: Path):
    dataset = get_dataset(name)
    job = registry.create(
        job_id=f"draft-{name}",
        dataset=name,
        brand="acme",
        file_name=sample.name,
        file_path=str(sample),
        file_sha256="0" * 64,
        file_bytes=sample.stat().st_size,
        created_by="ana",
    )
    with lake.session() as con:
        counts = stage_file(con, job, dataset, sample, 1000)
        staged = staged_rows(con, job, dataset).df()
    return counts, staged


def every_field_has_a_comment(source: str) -> bool:
    lines = source.splitlines()
    body = lines[lines.index(next(line for line in lines if line.startswith("class "))) + 1 :]
    fields = [i for i, line in enumerate(body) if re.match(r"    [a-z_0-9]+: Series\[", line)]
    return bool(fields) and all(body[i - 1].lstrip().startswith("#") for i in fields)


@pytest.mark.parametrize(
    "name, sample, rows",
    [
        ("catalogue", EXAMPLE, 16),  # the products example, bad rows and all
        ("stores", SAMPLES / "stores.csv", 8),  # semicolons, decimal commas, cp1252, a header with "m²"
        ("deliveries", SAMPLES / "deliveries.csv", 8),  # dates written dd.mm.yyyy
    ],
)
def test_a_draft_loads_passes_check_and_stages_its_own_sample_with_no_reject(
    home, tmp_path, monkeypatch, name, sample, rows
):
    folder, source = draft(tmp_path, name, sample)
    assert every_field_has_a_comment(source), source
    assert "# key: " in source and "# required: " in source

    checked = run_cli("datasets", "check", str(folder))
    assert checked.stdout.startswith(f"ok    {name}.py (dataset {name})"), checked.stdout

    monkeypatch.setenv("BULKIMPORT_DATASETS", str(folder))
    counts, staged = stage_sample(name, sample)
    assert (counts.rows_total, counts.rows_valid, counts.rows_rejected) == (rows, rows, 0)

    dataset = get_dataset(name)
    if name == "catalogue":
        assert dataset.key == ("name",), "sku repeats ACME-1002 in the sample, so it is not proposed as the key"
        assert "sku is not ('ACME-1002' appears twice)" in source
        assert "'acme 1009' does not" in source  # the one SKU that breaks the pattern is named
        assert dataset.schema.columns["currency"].checks[0].statistics["allowed_values"] == ["EUR", "USD", "XYZ"]
    if name == "stores":
        assert dataset.decimal_comma and dataset.sql_types["omzet_eur"] == "DECIMAL(18,2)"
        assert dataset.aliases == {"oppervlakte_m2": ("Oppervlakte m²",)}
        assert dataset.key == ("filiaal_nr",)
        assert float(staged.loc[staged.filiaal_nr == "S0003", "omzet_eur"].item()) == 12000.75
        assert dataset.schema.columns["filiaal_nr"].checks[0].statistics["pattern"] == "^S[0-9]{4}$"
    if name == "deliveries":
        assert dataset.sql_types["datum"] == "DATE" and dataset.date_formats[0] == "%d.%m.%Y"
        assert staged.loc[staged.lieferung == "L-2024-002", "datum"].item().date() == dt.date(2024, 3, 15)
        assert dataset.required == ("lieferung", "datum", "menge", "lager"), "Bemerkung has blanks"
        assert {c.name for c in dataset.schema.columns["menge"].checks} == {
            "greater_than_or_equal_to",
            "less_than_or_equal_to",
        }


def test_a_draft_refuses_to_overwrite_and_names_a_bad_dataset_name(home, tmp_path):
    target = tmp_path / "stores.py"
    target.write_text("# mine\n")
    refused = run_cli(
        "datasets", "draft", "stores", "--from", str(SAMPLES / "stores.csv"), "-o", str(target), check=False
    )
    assert refused.returncode == 2 and "exists" in refused.stderr and target.read_text() == "# mine\n"
    bad = run_cli("datasets", "draft", "Stores!", "--from", str(SAMPLES / "stores.csv"), check=False)
    assert bad.returncode == 2 and "must match" in bad.stderr


def test_check_exits_1_naming_each_problem_of_each_module(home, tmp_path):
    folder = tmp_path / "datasets"
    folder.mkdir()
    header = "import pandera.pandas as pa\nfrom pandera.typing import Series\nfrom bulkimport.datasets import Dataset\n"
    (folder / "broken.py").write_text(header + "class M(pa.DataFrameModel):\n    a: Series[str]\nDATASET = Dataset(\n")
    (folder / "keyless.py").write_text(
        header + "class M(pa.DataFrameModel):\n    a: Series[str]\n"
        "DATASET = Dataset(name='keyless', description='', model=M, key=('a',), sql_types={'a': 'VARCHAR'},"
        " required=())\n"
    )
    (folder / "mixed.py").write_text(
        header + "class M(pa.DataFrameModel):\n    a: Series[str]\n    qty: Series[str]\n    b: Series[str]\n"
        "DATASET = Dataset(name='mixed', description='', model=M, key=('a',),"
        " sql_types={'a': 'VARCHAR', 'qty': 'BIGINT', 'c': 'VARCHAR'}, required=('a',),"
        " aliases={'a': ('QTY',), 'zzz': ('x',)}, date_formats=('%Q',))\n"
    )
    (folder / "copy.py").write_text((REPO / "bulkimport" / "datasets" / "products.py").read_text())

    result = run_cli("datasets", "check", str(folder), check=False)
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL  broken.py" in out and "does not import: SyntaxError: '(' was never closed (broken.py, line 6)" in out
    assert "FAIL  keyless.py" in out and "key columns ['a'] must be required" in out
    assert "FAIL  mixed.py (dataset mixed)" in out
    for reason in (
        "sql_types names column(s) the model lacks: c",
        "the model has column(s) sql_types lacks: b",
        "column qty: the model says string[pyarrow] but sql_types says BIGINT",
        "the header name 'qty' of column qty would also match column a",
        "aliases name column 'zzz', which the dataset does not have",
        "date format '%Q' does not read dates",
    ):
        assert reason in out, reason
    assert "FAIL  copy.py (dataset products)" in out and "is a built-in dataset's name" in out
    assert "0 of 4 module(s)" in result.stderr


def test_a_hostile_sample_name_or_cell_cannot_put_code_in_the_draft(home, tmp_path):
    sample = tmp_path / "sample.csv"
    sample.write_text('code,note\nA1,"x\n""""""\nraise SystemExit(3)"\nA2,plain\n', encoding="utf-8")
    drafted = dataset_draft.draft("hostile", sample, sample_name='a""";raise SystemExit(2);""".csv')
    tree = ast.parse(drafted.source)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "SystemExit" not in names and not any(isinstance(node, ast.Raise) for node in ast.walk(tree))
    assert [type(node).__name__ for node in tree.body] == [
        "Expr",
        "Import",
        "Import",
        "ImportFrom",
        "ImportFrom",
        "ClassDef",
        "Assign",
    ]
    assert dataset_draft.load_draft(drafted.source, "hostile").name == "hostile"  # loads: no SystemExit ran
