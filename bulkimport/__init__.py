"""bulkimport: governed CSV imports. The notebook and script API.

    import bulkimport as bi
    job = bi.submit("examples/products.csv", dataset="products", brand="acme", created_by="me")
    bi.wait(job.id)
    bi.rejected(job.id).df()
    bi.approve(job.id, approved_by="op")

Nothing here imports actor code: work is sent to workers by name.
"""

from bulkimport.api import connect, diff, export, job, jobs, production, rejected, staged
from bulkimport.errors import BulkImportError
from bulkimport.workflow import approve, reject, submit, wait

__all__ = [
    "BulkImportError", "approve", "connect", "diff", "export", "job", "jobs", "production", "reject",
    "rejected", "staged", "submit", "wait",
]
