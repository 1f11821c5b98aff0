"""A real DuckLake shared by the tests of one module, and the staged rows as plain values.

Staging into a fresh lake costs ~0.6 s of setup; corpus and property tests stage
dozens of files, each as its own job (its own job id), into one lake instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from bulkimport import lake, launcher, registry
from bulkimport.datasets import Dataset
from bulkimport.stages.review import staged_rows


@contextmanager
def private_lake(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Like the `home` fixture (a private BULKIMPORT_HOME, Redis on a closed port), plus an open lake session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BULKIMPORT_HOME", str(home))
        patch.setenv("REDIS_URL", f"redis://127.0.0.1:{launcher.free_port()}/0")
        patch.delenv("BULKIMPORT_DATASETS", raising=False)
        with lake.session() as con:
            yield con


def make_job(path: Path, job_id: str, options: dict | None = None) -> registry.Job:
    return registry.create(
        job_id=job_id,
        dataset="products",
        brand="acme",
        file_name=path.name,
        file_path=str(path),
        file_sha256="0" * 64,
        file_bytes=path.stat().st_size,
        created_by="ana",
        options=options or None,
    )


def staged_values(con: duckdb.DuckDBPyConnection, job: registry.Job, dataset: Dataset) -> list[dict]:
    """Staged rows in line order: decimals as text ("4.50"), dates in ISO form, brand left out."""
    relation = staged_rows(con, job, dataset)
    out = []
    for values in relation.fetchall():
        record = dict(zip(relation.columns, values, strict=True))
        record.pop("brand")
        for name, value in record.items():
            if name == "price" and value is not None:
                record[name] = str(value)
            elif hasattr(value, "isoformat"):
                record[name] = value.isoformat()
        out.append(record)
    return out
