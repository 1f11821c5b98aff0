"""Datasets: what a CSV must look like to be imported.

Each dataset is a module that defines ``DATASET = Dataset(...)``. The built-in
ones live in this package; more can be added without touching the package by
putting modules in the folder named by ``BULKIMPORT_DATASETS``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandera.pandas as pa

from bulkimport.errors import UnknownDataset

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Dataset:
    """A table users import into: its schema, key and SQL column types.

    Every production row also carries ``brand`` (part of the key) and
    ``job_id`` (the import that last wrote it); datasets do not declare them.
    """

    name: str
    description: str
    model: type[pa.DataFrameModel]
    key: tuple[str, ...]
    sql_types: dict[str, str]
    required: tuple[str, ...]
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Accept "1.234,56" as well as "1234.56" in numeric columns.
    decimal_comma: bool = False
    # strptime formats accepted in DATE columns; values are stored as dates.
    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    # The SQL of custom checks, by check name, for the staging fast path: a DuckDB boolean
    # expression over {value} (the typed, non-null value) that means what the check means.
    # A custom check without one runs in Python on batches of rows (see stages/compile.py).
    sql_checks: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ValueError(f"dataset name {self.name!r} must match {_NAME.pattern}")
        for column in (*self.sql_types, *self.key):
            if not _NAME.match(column):
                raise ValueError(f"dataset {self.name}: column {column!r} must match {_NAME.pattern}")
        missing = set(self.key) - set(self.required)
        if missing:
            raise ValueError(f"dataset {self.name}: key columns {sorted(missing)} must be required")

    @property
    def columns(self) -> list[str]:
        return list(self.sql_types)

    def columns_of_type(self, *prefixes: str) -> list[str]:
        return [c for c, t in self.sql_types.items() if t.upper().startswith(prefixes)]

    @property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()


def _load_module_datasets(module) -> dict[str, Dataset]:
    dataset = getattr(module, "DATASET", None)
    return {dataset.name: dataset} if isinstance(dataset, Dataset) else {}


def _builtin() -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for info in pkgutil.iter_modules(__path__):
        found.update(_load_module_datasets(importlib.import_module(f"{__name__}.{info.name}")))
    return found


def _external(folder: Path) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"bulkimport_datasets_ext.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.update(_load_module_datasets(module))
    return found


def all_datasets() -> dict[str, Dataset]:
    """Every known dataset by name: built-in ones, then those in BULKIMPORT_DATASETS."""
    from bulkimport.config import settings

    found = _builtin()
    extra = settings().datasets_dir
    if extra and extra.is_dir():
        found.update(_external(extra))
    return dict(sorted(found.items()))


def get_dataset(name: str) -> Dataset:
    datasets = all_datasets()
    try:
        return datasets[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known datasets: {', '.join(datasets) or 'none'}") from None
