"""Check dataset modules before they are deployed: ``bulkimport datasets check [FOLDER]``.

For every module of the folder: it imports and defines ``DATASET``; the names
are valid and not reserved; the key is required; the model and ``sql_types``
name the same columns, with types that agree and that DuckDB knows; aliases do
not collide; date formats read dates; no two modules define the same dataset.
It also says how the dataset stages: whether its checks compile to the staging
fast path's SQL, and which run in Python (or keep files on the careful path) and
why. That is a note, not a failure: such a dataset works, only slower.
"""

from __future__ import annotations

import datetime as dt
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from bulkimport.datasets import Dataset, builtin_datasets, dataset_files, load_module
from bulkimport.stages.read import normalise

# The pandas dtypes a model may give a column of each kind of SQL type.
_DTYPES = {
    "integer": ("int", "Int"),
    "number": ("float", "Float", "int", "Int"),
    "date": ("datetime",),
    "text": ("str", "string", "object"),
    "boolean": ("bool", "boolean"),
}


@dataclass
class ModuleReport:
    path: Path
    dataset: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it stages: fast path, checks in Python, careful path

    @property
    def ok(self) -> bool:
        return not self.problems


def _kind(sql_type: str) -> str | None:
    kind = sql_type.upper()
    if kind.startswith(("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UBIGINT", "UINTEGER")):
        return "integer"
    if kind.startswith(("DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL")):
        return "number"
    if kind.startswith(("DATE", "TIMESTAMP")):
        return "date"
    if kind.startswith(("VARCHAR", "TEXT", "STRING")):
        return "text"
    if kind.startswith("BOOL"):
        return "boolean"
    return None


def _where_it_failed(exc: BaseException, path: Path) -> str:
    """``line 12: NameError: ...`` from the deepest frame in the module itself."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    where = f"line {lines[-1]}: " if lines else ""
    return f"{where}{type(exc).__name__}: {exc}"


def dataset_problems(dataset: Dataset) -> list[str]:
    """What is wrong with a dataset that loaded: columns, types, aliases, date formats."""
    problems = dataset.naming_problems()
    try:
        schema = dataset.schema
    except Exception as exc:  # noqa: BLE001 - a model pandera cannot turn into a schema
        return [*problems, f"the model is not a valid pandera model: {exc}"]
    in_model, in_sql = set(schema.columns), set(dataset.sql_types)
    if in_sql - in_model:
        problems.append(f"sql_types names column(s) the model lacks: {', '.join(sorted(in_sql - in_model))}")
    if in_model - in_sql:
        problems.append(f"the model has column(s) sql_types lacks: {', '.join(sorted(in_model - in_sql))}")
    con = duckdb.connect()
    try:
        for column, sql_type in dataset.sql_types.items():
            try:
                con.execute(f"SELECT CAST(NULL AS {sql_type})")
            except duckdb.Error:
                problems.append(f"column {column}: {sql_type!r} is not a DuckDB type")
                continue
            kind, model_column = _kind(sql_type), schema.columns.get(column)
            dtype = str(model_column.dtype) if model_column is not None else ""
            if kind and model_column is not None and not dtype.startswith(_DTYPES[kind]):
                problems.append(f"column {column}: the model says {dtype} but sql_types says {sql_type}")
    finally:
        con.close()
    for column in dataset.aliases:
        if column not in dataset.sql_types:
            problems.append(f"aliases name column {column!r}, which the dataset does not have")
    claimed: dict[str, str] = {}
    for column in dataset.sql_types:
        for name in (column, *dataset.aliases.get(column, ())):
            other = claimed.setdefault(normalise(name), column)
            if other != column:
                problems.append(f"the header name {name!r} of column {column} would also match column {other}")
    for fmt in dataset.date_formats:
        sample = dt.date(2024, 3, 1)
        try:
            if dt.datetime.strptime(sample.strftime(fmt), fmt).date() != sample:
                raise ValueError("does not read back the date it writes")
        except ValueError as exc:
            problems.append(f"date format {fmt!r} does not read dates: {exc}")
    return problems


def check_module(path: Path) -> ModuleReport:
    report = ModuleReport(path)
    try:
        module = load_module(path)
    except Exception as exc:  # noqa: BLE001 - whatever a module raises is the answer
        report.problems.append(f"does not import: {_where_it_failed(exc, path)}")
        return report
    dataset = getattr(module, "DATASET", None)
    if not isinstance(dataset, Dataset):
        report.problems.append("defines no DATASET = Dataset(...)")
        return report
    report.dataset = dataset.name
    report.problems += dataset_problems(dataset)
    if report.ok:
        report.notes += _staging_notes(dataset)
    return report


def _staging_notes(dataset: Dataset) -> list[str]:
    from bulkimport.stages.compile import compile_dataset

    compiled = compile_dataset(dataset)
    if compiled.usable and not compiled.python_checks:
        return ["every check compiles to the staging fast path"]
    return compiled.explain()


def check_folder(folder: Path) -> list[ModuleReport]:
    """A report per dataset module of ``folder``; a name defined twice (or by a built-in dataset) is a problem."""
    if not folder.is_dir():
        return [ModuleReport(folder, problems=["is not a folder"])]
    reports = [check_module(path) for path in dataset_files(folder)]
    if not reports:
        return [ModuleReport(folder, problems=["holds no dataset module (*.py)"])]
    builtin_folder = Path(__file__).parent / "datasets"
    builtin = {} if folder.resolve() == builtin_folder.resolve() else builtin_datasets()
    seen: dict[str, Path] = {}
    for report in reports:
        if report.dataset is None:
            continue
        if report.dataset in builtin:
            report.problems.append(f"dataset {report.dataset!r} is a built-in dataset's name")
        elif report.dataset in seen:
            report.problems.append(f"dataset {report.dataset!r} is also defined by {seen[report.dataset].name}")
        seen.setdefault(report.dataset, report.path)
    return reports
