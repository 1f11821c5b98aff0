"""Datasets: what a CSV must look like to be imported.

Each dataset is a module that defines ``DATASET = Dataset(...)``. The built-in
ones live in this package; more can be added without touching the package by
putting modules in the folder named by ``BULKIMPORT_DATASETS``.

Modules are loaded once and kept: the external folder is read again only when
one of its files changed (or ``reload_datasets()`` says so), so a worker picks
up an edited module at its next job without re-running every module per call.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import pkgutil
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandera.pandas as pa

from bulkimport.errors import DatasetChanged, DatasetInvalid, UnknownDataset

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Columns every lake table of a dataset has already: a dataset column may not take their names.
RESERVED_COLUMNS = ("brand", "job_id", "line")


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
        problems = self.naming_problems()
        if problems:
            raise ValueError(f"dataset {self.name}: " + "; ".join(problems))

    def naming_problems(self) -> list[str]:
        """What makes the dataset unusable: bad names, a key that is not required."""
        problems = []
        if not NAME_PATTERN.match(self.name):
            problems.append(f"the name {self.name!r} must match {NAME_PATTERN.pattern}")
        for column in dict.fromkeys((*self.sql_types, *self.key, *self.required)):
            if not NAME_PATTERN.match(column):
                problems.append(f"column {column!r} must match {NAME_PATTERN.pattern}")
            elif column in RESERVED_COLUMNS:
                problems.append(f"column {column!r} is reserved (every table has {', '.join(RESERVED_COLUMNS)})")
        if not self.key:
            problems.append("the key names no column")
        unknown = [c for c in (*self.key, *self.required) if c not in self.sql_types]
        if unknown:
            problems.append(f"key or required column(s) {sorted(set(unknown))} are not in sql_types")
        missing = set(self.key) - set(self.required)
        if missing:
            problems.append(f"key columns {sorted(missing)} must be required")
        return problems

    @property
    def columns(self) -> list[str]:
        return list(self.sql_types)

    def columns_of_type(self, *prefixes: str) -> list[str]:
        return [c for c, t in self.sql_types.items() if t.upper().startswith(prefixes)]

    @property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()

    def definition(self) -> dict:
        """Everything that decides how a file is read and checked, as plain values (what ``version`` hashes)."""
        schema = self.schema
        return {
            "name": self.name,
            "sql_types": dict(self.sql_types),
            "key": list(self.key),
            "required": sorted(self.required),
            "aliases": {c: list(a) for c, a in sorted(self.aliases.items())},
            "decimal_comma": self.decimal_comma,
            "date_formats": list(self.date_formats),
            "columns": {
                name: {
                    "dtype": str(column.dtype),
                    "nullable": column.nullable,
                    "unique": column.unique,
                    "checks": [_check_identity(c) for c in column.checks],
                }
                for name, column in schema.columns.items()
            },
            "checks": [_check_identity(c) for c in schema.checks],
            "coerce": schema.coerce,
            "strict": schema.strict,
            # A custom check is known by its name only: its code decides what it accepts.
            "custom_check_code": _custom_check_code(self.model),
            "sql_checks": dict(sorted(self.sql_checks.items())),
        }

    @cached_property
    def version(self) -> str:
        """A short hash of the definition: jobs record the version that validated them."""
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def require_version(self, job) -> None:
        """DatasetChanged if another version of this dataset validated ``job`` (a registry.Job)."""
        if job.dataset_version and job.dataset_version != self.version:
            raise DatasetChanged(
                f"dataset {self.name} changed since job {job.id} was validated (version {job.dataset_version}, "
                f"now {self.version}): check it again against the new definition (`bulkimport recheck {job.id}`, "
                "or Re-check on the review page), then approve"
            )


def _check_identity(check) -> dict:
    statistics = json.loads(json.dumps(check.statistics, default=str))
    return {"name": check.name, "statistics": statistics, "error": check.error}


def _code_fingerprint(code) -> str:
    """The bytecode, constants and names of a function (nested ones too): comments and layout do not count."""
    digest = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        digest.update(_code_fingerprint(const).encode() if hasattr(const, "co_code") else repr(const).encode())
    digest.update(repr(code.co_names).encode())
    return digest.hexdigest()[:16]


def _custom_check_code(model: type) -> dict[str, str]:
    found = {}
    for cls in reversed(model.__mro__):
        for name, attr in vars(cls).items():
            function = getattr(attr, "__func__", attr)
            if hasattr(attr, "__check_config__") and hasattr(function, "__code__"):
                found[name] = _code_fingerprint(function.__code__)
    return found


def _load_module_datasets(module) -> dict[str, Dataset]:
    dataset = getattr(module, "DATASET", None)
    return {dataset.name: dataset} if isinstance(dataset, Dataset) else {}


def builtin_datasets() -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for info in pkgutil.iter_modules(__path__):
        found.update(_load_module_datasets(importlib.import_module(f"{__name__}.{info.name}")))
    return found


def dataset_files(folder: Path) -> list[Path]:
    """The dataset modules of a folder: its ``*.py`` files, except ``_private.py`` ones."""
    return [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def load_module(path: Path):
    """Execute a dataset module file and return it (the module may raise anything)."""
    spec = importlib.util.spec_from_file_location(f"bulkimport_datasets_ext.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _external(folder: Path) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for path in dataset_files(folder):
        try:
            module = load_module(path)
        except Exception as exc:  # noqa: BLE001 - any error in a person's module is reported with its file
            raise DatasetInvalid(
                f"dataset module {path} does not load: {type(exc).__name__}: {exc} "
                f"(`bulkimport datasets check {folder}` lists every problem)"
            ) from exc
        found.update(_load_module_datasets(module))
    return found


def _folder_state(folder: Path | None) -> tuple | None:
    """What tells that the external folder changed: its files' names, sizes and modification times."""
    if folder is None or not folder.is_dir():
        return None
    state = []
    for path in dataset_files(folder):
        try:
            stat = path.stat()
        except OSError:
            continue
        state.append((path.name, stat.st_mtime_ns, stat.st_size))
    return (str(folder.resolve()), tuple(state))


_loaded: tuple[tuple | None, dict[str, Dataset]] | None = None
_lock = threading.Lock()


def reload_datasets() -> None:
    """Forget the loaded modules: the next call reads the external folder again."""
    global _loaded
    with _lock:
        _loaded = None


def all_datasets() -> dict[str, Dataset]:
    """Every known dataset by name: built-in ones, then those in BULKIMPORT_DATASETS."""
    global _loaded
    from bulkimport.config import settings

    extra = settings().datasets_dir
    state = _folder_state(extra)
    with _lock:
        if _loaded is None or _loaded[0] != state:
            found = builtin_datasets()
            if state is not None:
                found.update(_external(extra))
            _loaded = (state, dict(sorted(found.items())))
        return dict(_loaded[1])


def get_dataset(name: str) -> Dataset:
    datasets = all_datasets()
    try:
        return datasets[name]
    except KeyError:
        raise UnknownDataset(f"unknown dataset {name!r}; known datasets: {', '.join(datasets) or 'none'}") from None
