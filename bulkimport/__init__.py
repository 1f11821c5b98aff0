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
history, snapshot, connect (raw SQL), export, suggestions, fixes. Sending: submit
(mode="upsert"|"append"|"replace"), approve, reject, fix (rejected rows, in place),
wait. Nothing here imports actor code: work is sent to workers by name.
"""

from bulkimport.api import (
    changes,
    close,
    connect,
    diff,
    events,
    export,
    fix,
    fixes,
    history,
    imports,
    job,
    jobs,
    production,
    rejected,
    snapshot,
    staged,
    suggestions,
)
from bulkimport.errors import BulkImportError
from bulkimport.workflow import approve, reject, submit, wait

__all__ = [
    "BulkImportError",
    "approve",
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
    "production",
    "reject",
    "rejected",
    "snapshot",
    "staged",
    "submit",
    "suggestions",
    "wait",
]
