"""bulkimport: governed CSV imports. The notebook and script API.

    import bulkimport as bi
    bi.login()                                        # your personal token: BULKIMPORT_TOKEN, saved, or asked
    job = bi.submit("examples/products.csv", dataset="products", brand="acme")
    bi.wait(job.id)                                   # until staged (or failed)
    bi.rejected(job.id).df()                          # DuckDB relations: .df(), .pl(), .arrow()
    bi.diff(job.id)                                   # rows to insert / update / leave unchanged
    bi.login(approver_token); bi.approve(job.id)      # someone else approves (four eyes)
    bi.wait(job.id, until=["committed", "failed"])
    bi.production("products", brand="acme").df()      # now; as_of=job / snapshot / time; before_job=job
    bi.history("products", "ACME-1001", brand="acme").df()

Who acts: login, logout, whoami. Reading (your brands only): jobs, job, events, staged,
rejected, diff, changes, production, imports, history, snapshot, export; connect (raw SQL,
admins); suggestions, fixes. Sending: submit (mode="upsert"|"append"|"replace"), approve,
reject, revert, cancel, retry, fix (rejected rows, in place), wait. Nothing here
imports actor code: work is sent to workers by name.

The names are loaded on first use (PEP 562), so ``import bulkimport`` and the
command line's light commands do not pay for pandas, pandera or DuckDB.
"""

from __future__ import annotations

import importlib

_WHERE = {
    **dict.fromkeys(
        (
            "AsOf",
            "approve",
            "cancel",
            "changes",
            "close",
            "connect",
            "diff",
            "events",
            "export",
            "fix",
            "fixes",
            "history",
            "imports",
            "job",
            "jobs",
            "login",
            "logout",
            "production",
            "reject",
            "rejected",
            "retry",
            "revert",
            "snapshot",
            "staged",
            "submit",
            "suggestions",
            "wait",
            "whoami",
        ),
        "bulkimport.api",
    ),
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
