"""The Python API for notebooks and scripts: read jobs and lake data, submit and approve.

    import bulkimport as bi
    bi.login()                                        # BULKIMPORT_TOKEN, the token `bulkimport login` saved, or asks
    bi.jobs(status="staged")                          # a DataFrame of jobs, newest first
    bi.rejected(job_id).df()                          # DuckDB relations: .df(), .pl(), .arrow()
    bi.production("products", brand="acme", as_of=job_id).df()
    bi.history("products", "ACME-1001", brand="acme").df()

Reading goes through one lazily opened lake connection per process (per lake
location). Reads never wait for a worker and a worker never waits for them:
DuckLake keeps every commit as a snapshot, so a reader sees the last committed
state while a worker writes the next one. Results are lazy DuckDB relations:
nothing is read until ``.df()``, ``.pl()``, ``.arrow()``, ``.fetchall()`` ...

Time travel uses those snapshots. An import's commit (its MERGE and its ledger
entry, in one transaction) is one snapshot: "as of a job" is the state right
after that snapshot, "before a job" the state just before it.

Every call acts as the person whose personal token proves it (``bi.login``, or the
``BULKIMPORT_TOKEN`` variable): reads see only that person's brands ("not found or
not yours" otherwise, as in the dashboard), and submitting and approving follow
their role. ``bi.connect()`` (raw SQL over every brand) is for admins.

Nothing here imports actor code: ``submit`` and ``approve`` (in
``bulkimport.workflow``) send work to a worker by actor name.
"""

from __future__ import annotations

from bulkimport.api.job_data import changes, diff, events, export, job, jobs, rejected, staged
from bulkimport.api.production_data import history, imports, production
from bulkimport.api.sending import approve, cancel, fix, fixes, reject, retry, revert, submit, suggestions, wait
from bulkimport.api.session import close, connect, login, logout, whoami
from bulkimport.api.snapshots import AsOf, snapshot

__all__ = [
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
]
