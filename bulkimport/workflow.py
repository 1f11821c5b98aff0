"""The sending side of the flow: submit, approve, reject, wait.

Used by the dashboard, the CLI and notebooks. Records the job, then sends the
actor by name; if sending fails the job never stays in a state no worker will
move it from.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from bulkimport import dispatch, registry
from bulkimport.config import settings
from bulkimport.datasets import get_dataset
from bulkimport.errors import BulkImportError, DispatchError
from bulkimport.registry import APPROVED, FAILED, FINAL, PENDING, REJECTED, STAGED

BRAND_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def safe_file_name(name: str) -> str:
    """A file name that is safe to store: no folders, no odd characters."""
    base = re.split(r"[\\/]", name or "")[-1].replace("\x00", "")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:120]
    return base or "upload.csv"


def _store(source: Path | BinaryIO, target: Path) -> tuple[str, int]:
    """Copy the upload into place, returning its sha256 and size."""
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        stream = open(source, "rb") if isinstance(source, (str, Path)) else source
        try:
            while block := stream.read(1 << 20):
                digest.update(block)
                size += len(block)
                out.write(block)
        finally:
            if isinstance(source, (str, Path)):
                stream.close()
    return digest.hexdigest(), size


def submit(source: Path | str | BinaryIO, *, dataset: str, brand: str, created_by: str,
           file_name: str | None = None) -> registry.Job:
    """Store the file, record a pending job and send ``validate_and_stage``.

    Raises DispatchError (after marking the job failed with the reason) when the
    broker cannot be reached.
    """
    get_dataset(dataset)
    if not BRAND_PATTERN.match(brand or ""):
        raise BulkImportError(f"brand {brand!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if not created_by:
        raise BulkImportError("who is submitting? give a user name")
    if isinstance(source, (str, Path)):
        source = Path(source)
        if not source.is_file():
            raise BulkImportError(f"{source}: no such file")
        file_name = file_name or source.name
    job_id = registry.new_job_id()
    stored = settings().uploads / job_id / safe_file_name(file_name or "upload.csv")
    sha256, size = _store(source, stored)
    job = registry.create(job_id=job_id, dataset=dataset, brand=brand, file_name=file_name or stored.name,
                      file_path=str(stored), file_sha256=sha256, file_bytes=size, created_by=created_by)
    try:
        dispatch.send(dispatch.VALIDATE_AND_STAGE, job.id)
    except DispatchError as exc:
        registry.transition(job.id, PENDING, FAILED, actor=created_by, error=str(exc), note="not queued")
        raise
    return job


def approve(job_id: str, *, approved_by: str) -> registry.Job:
    """Approve a staged job and send ``commit_to_production``.

    If the message cannot be sent, the approval is undone (the job is staged
    again) and DispatchError says why.
    """
    if not approved_by:
        raise BulkImportError("who is approving? give a user name")
    job = registry.transition(job_id, STAGED, APPROVED, actor=approved_by, approved_by=approved_by, error=None)
    try:
        dispatch.send(dispatch.COMMIT_TO_PRODUCTION, job.id)
    except DispatchError as exc:
        registry.transition(job_id, APPROVED, STAGED, actor=approved_by, approved_by=None,
                        error=f"approval undone: {exc}", note="commit not queued")
        raise
    return job


def reject(job_id: str, *, rejected_by: str, reason: str = "") -> registry.Job:
    """Reject a staged job: nothing reaches production."""
    return registry.transition(job_id, STAGED, REJECTED, actor=rejected_by, error=reason or None,
                           note=reason or None)


def wait(job_id: str, until: Iterable[str] = (STAGED, *FINAL), timeout: float = 600, poll: float = 0.25,
         on_change=None) -> registry.Job:
    """Block until the job reaches one of ``until``; TimeoutError names the state it is stuck in."""
    until = set(until)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        job = registry.get(job_id)
        if on_change and job.status != last:
            on_change(job)
            last = job.status
        if job.status in until:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {job.status} after {timeout:.0f}s; is a worker running? "
                               "(`bulkimport worker`)")
        time.sleep(poll)
