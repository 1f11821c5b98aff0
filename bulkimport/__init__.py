"""bulkimport: governed CSV imports. The notebook and script API.

    import bulkimport as bi
    job = bi.submit("examples/products.csv", dataset="products", brand="acme", created_by="me")
    bi.wait(job.id)                                   # until staged (or failed)
    bi.rejected(job.id).df()                          # DuckDB relations: .df(), .pl(), .arrow()
    bi.diff(job.id)                                   # rows to insert / update / leave unchanged
    bi.approve(job.id, approved_by="op")
    bi.wait(job.id, until=["committed", "failed"])
    bi.production("products", brand="acme").df()      # now; as_of=job / snapshot / time; before_job=job
    bi.history("products", "ACME-1001", brand="acme").df()

Reading: jobs, job, events, staged, rejected, diff, changes, production, imports,
history, snapshot, connect (raw SQL), export. Sending: submit, approve, reject,
wait. Nothing here imports actor code: work is sent to workers by name.

The names are loaded on first use (PEP 562), so ``import bulkimport`` and the
command line's light commands do not pay for pandas, pandera or DuckDB.
"""

from __future__ import annotations

import importlib

_WHERE = {
    **dict.fromkeys(
        (
            "changes",
            "close",
            "connect",
            "diff",
            "events",
            "export",
            "history",
            "imports",
            "job",
            "jobs",
            "production",
            "rejected",
            "snapshot",
            "staged",
        ),
        "bulkimport.api",
    ),
    **dict.fromkeys(("approve", "reject", "submit", "wait"), "bulkimport.workflow"),
    "BulkImportError": "bulkimport.errors",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkimport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
