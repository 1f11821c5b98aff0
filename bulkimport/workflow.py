"""The sending side of the flow: submit, approve, reject, wait; and which jobs a user may see.

Used by the dashboard, the CLI and notebooks. Each takes the authenticated
``users.User`` who acts (the dashboard's login, the CLI's and the API's token)
and checks role and brands here, so every face enforces the same rules. Records
the job, then sends the actor by name; if sending fails the job never stays in a
state no worker will move it from.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from bulkimport import dispatch, fixing, lake, progress, registry, sql, users
from bulkimport.access import acting, visible_events, visible_job, visible_jobs  # noqa: F401 - part of this API
from bulkimport.config import settings
from bulkimport.datasets import get_dataset
from bulkimport.errors import (
    BulkImportError,
    ConfirmationNeeded,
    DatasetChanged,
    DispatchError,
    DuplicateFile,
    InvalidTransition,
    JobNotFound,
    NotAllowed,
    UploadTooLarge,
)
from bulkimport.registry import (
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    FINAL,
    FIXING,
    PENDING,
    REJECTED,
    REVERTING,
    STAGED,
    UPSERT,
    VALIDATING,
)
from bulkimport.stages import modes, read, review
from bulkimport.stages.stage import describe

SUBMIT_OPTIONS = {
    "encoding",
    "delimiter",
    "quote",  # "none": the file quotes nothing, every quote character is part of its cell
    "escape",  # "none": quotes inside quoted cells are doubled
    "header_row",
    "sheet",
    "skip_initial_space",  # spaces after a delimiter are not part of the next cell
    "header_split",  # "none": read the header as written, even if a cell of it seems to have lost a delimiter
    "no_header",  # the file has no header line: its cells are the dataset's columns in order ...
    "columns",  # ... or these columns, in the file's order
}
BRAND_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def safe_file_name(name: str) -> str:
    """A file name that is safe to store: no folders, no odd characters."""
    base = re.split(r"[\\/]", name or "")[-1].replace("\x00", "")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:120]
    return base or "upload.csv"


def _too_large(name: str, max_bytes: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"{name} is larger than the upload limit of {max_bytes / 2**20:.0f} MB "
        "(BULKIMPORT_UPLOAD_MAX_MB); submit big files with `bulkimport submit`"
    )


def _store(source: Path | BinaryIO, target: Path, max_bytes: int | None = None) -> tuple[str, int]:
    """Copy the upload into place, returning its sha256 and size; nothing is kept past ``max_bytes``."""
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "wb") as out:
            stream = open(source, "rb") if isinstance(source, (str, Path)) else source
            try:
                while block := stream.read(1 << 20):
                    size += len(block)
                    if max_bytes is not None and size > max_bytes:
                        raise _too_large(target.name, max_bytes)
                    digest.update(block)
                    out.write(block)
            finally:
                if isinstance(source, (str, Path)):
                    stream.close()
    except BaseException:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise
    return digest.hexdigest(), size


@dataclass(frozen=True)
class Upload:
    """A file stored under BULKIMPORT_HOME/uploads, not yet a job."""

    job_id: str
    path: Path
    file_name: str
    sha256: str
    size: int


def store_upload(source: Path | str | BinaryIO, file_name: str | None = None) -> Upload:
    """Copy a file (a path or a binary stream) into the uploads folder under a safe name.

    A stream (a browser upload) is capped at BULKIMPORT_UPLOAD_MAX_MB and refused
    before anything is stored when its size is known; a path (the CLI, scripts:
    the way to bring big files) is not capped.
    """
    max_bytes = None
    if isinstance(source, (str, Path)):
        source = Path(source)
        if not source.is_file():
            raise BulkImportError(f"{source}: no such file")
        file_name = file_name or source.name
    else:
        max_bytes = settings().upload_max_mb * 2**20
        if (getattr(source, "size", None) or 0) > max_bytes:
            raise _too_large(safe_file_name(file_name or "upload"), max_bytes)
    job_id = registry.new_job_id()
    stored = settings().uploads / job_id / safe_file_name(file_name or "upload.csv")
    try:
        sha256, size = _store(source, stored, max_bytes)
    except OSError as exc:  # a full disk, an uploads folder that is not one
        raise BulkImportError(f"cannot store the upload in {settings().uploads}: {exc.strerror or exc}") from exc
    return Upload(job_id, stored, file_name or stored.name, sha256, size)


def discard_upload(upload: Upload) -> None:
    """Remove a stored upload that did not become a job (a preview, a cancelled form)."""
    shutil.rmtree(upload.path.parent, ignore_errors=True)


def sweep_abandoned_uploads(older_than_s: float = 86_400) -> list[Path]:
    """Remove stored uploads that never became a job (a preview whose tab was closed), once old enough.

    An upload's folder is named after the job id it would get, so a folder with no
    such job in the registry is abandoned; young ones may still be in a form.
    """
    uploads = settings().uploads
    if not uploads.is_dir():
        return []
    removed = []
    for folder in uploads.iterdir():
        try:
            if not folder.is_dir() or time.time() - folder.stat().st_mtime < older_than_s:
                continue
            registry.get(folder.name)
        except JobNotFound:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except OSError:
            continue
    return removed


@dataclass(frozen=True)
class Preview:
    """What the worker will find in a file: dialect, header, column mapping and the first rows."""

    dialect: dict
    header: list[str]
    mapping: dict[str, str]
    suggestions: dict[str, str]
    missing: list[str]
    ignored: list[str]
    remembered: bool
    sample: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # findings in the header a person may override
    readings: list[dict] = field(default_factory=list)  # the dialects weighed, the chosen one first, each with why
    headerless: bool = False  # the first line looks like data: offer "no header: columns in dataset order"


def preview(
    upload: Upload,
    dataset: str,
    options: dict | None = None,
    mapping: dict[str, str] | None = None,
    rows: int = 10,
    *,
    brand: str | None = None,
    user: users.User | None = None,
) -> Preview:
    """Read the header and first rows the way the worker will; FileRefused if nothing can be read.

    With a ``brand`` (of ``user``'s), proposes the mapping that brand chose last for this
    header, if any, else the automatic one. Proposed only: the worker applies what submit sends.
    """
    ds = get_dataset(dataset)
    options = check_options(options, ds)
    if brand is not None:
        if user is None:
            raise BulkImportError("a preview for a brand needs the user who asks")
        users.require_upload(acting(user), brand)

    def remembered(header):
        return registry.remembered_mapping(dataset, brand, header) if brand is not None else None

    source = read.open_source(upload.path, ds, upload.file_name, options, mapping, remembered=remembered, refuse=False)
    first = next(read.read_chunks(upload.path, ds, rows, source, sheet=options.get("sheet")), None)
    sample = first.frame.reset_index() if first is not None else pd.DataFrame(columns=["line", *ds.columns])
    match = source.match
    return Preview(
        describe(source),
        match.header,
        match.mapping,
        match.suggestions,
        match.missing,
        match.extra,
        source.remembered,
        sample,
        list(source.notes),
        list(source.readings),
        source.headerless,
    )


def check_options(options: dict | None, dataset) -> dict:
    """The reading options that were given, checked: known names, columns the dataset has."""
    options = {k: v for k, v in (options or {}).items() if v not in (None, "")}
    unknown = set(options) - SUBMIT_OPTIONS
    if unknown:
        raise BulkImportError(f"unknown option(s) {sorted(unknown)}; known: {sorted(SUBMIT_OPTIONS)}")
    for name in ("delimiter", "quote", "escape"):
        value = options.get(name)
        if value is not None and len(value) != 1 and not (name != "delimiter" and value == "none"):
            allowed = "one character" + (" or 'none'" if name != "delimiter" else "")
            raise BulkImportError(f"{name} must be {allowed}, got {value!r}")
    columns = options.get("columns")
    if columns is not None:
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",")]
        wrong = [c for c in columns if c and c not in dataset.columns]
        twice = sorted({c for c in columns if c and columns.count(c) > 1})
        if wrong or twice:
            raise BulkImportError(
                f"columns: {', '.join(map(repr, wrong + twice))} "
                f"{'twice' if twice and not wrong else 'unknown'}; dataset {dataset.name!r} has "
                f"{', '.join(dataset.columns)} (an empty name skips a cell)"
            )
        options["columns"] = list(columns)
    return options


def check_file(upload: Upload, dataset: str, options: dict | None = None, mapping: dict | None = None) -> None:
    """Refuse a file nothing can be imported from (empty, binary, unreadable, no usable header), before it
    becomes a job: the one check the dashboard, the CLI and the API share, with the worker's own message."""
    ds = get_dataset(dataset)
    # As the worker will read it: the options and mapping given at submit, nothing remembered.
    read.open_source(upload.path, ds, upload.file_name, check_options(options, ds), mapping)


# A file already in one of these states for the same dataset and brand is "the same file twice".
ALREADY_IMPORTED = (STAGED, FIXING, APPROVED, COMMITTING, COMMITTED)


def same_file_jobs(sha256: str, dataset: str, brand: str) -> list[registry.Job]:
    """Jobs that staged, approved or committed a file with this content for this dataset and brand."""
    return registry.jobs_with_file(sha256, dataset, brand, ALREADY_IMPORTED)


def duplicate_message(earlier: registry.Job) -> str:
    return (
        f"this file ({earlier.file_name}, sha256 {earlier.file_sha256[:12]}…) is already {earlier.status} as job "
        f"{earlier.id} for {earlier.dataset}/{earlier.brand}, uploaded by {earlier.created_by} at "
        f"{earlier.created_at[:19]} UTC"
    )


def submit(
    source: Path | str | BinaryIO | Upload,
    *,
    dataset: str,
    brand: str,
    user: users.User,
    file_name: str | None = None,
    options: dict | None = None,
    mapping: dict[str, str] | None = None,
    mode: str = UPSERT,
    allow_duplicate: bool = False,
    prechecked: bool = False,
) -> registry.Job:
    """Store the file, check it can be read, record a pending job and send ``validate_and_stage``.

    ``options`` override what is detected (encoding, delimiter, quote, escape,
    header_row, sheet, skip_initial_space, header_split; no_header and columns
    for a file without a header line); ``mapping`` (file column -> dataset column) is
    applied by the worker exactly as given, and remembered for the brand's next file
    with the same header (proposed at preview, never applied unasked); without one,
    the worker matches the header by names and aliases. ``mode`` is how the commit
    writes: ``upsert``, ``append`` or ``replace`` (see bulkimport.stages.modes). A file
    with the same content already staged, approved or committed for this dataset and
    brand raises DuplicateFile unless ``allow_duplicate``; a file nothing can be read
    from raises FileRefused (``check_file``, run here unless ``prechecked``: the
    dashboard runs it in its limited preview child); in both cases no job is created.
    Raises DispatchError (after marking the job failed with the reason) when the
    broker cannot be reached.
    """
    ds = get_dataset(dataset)
    if not BRAND_PATTERN.match(brand or ""):
        raise BulkImportError(f"brand {brand!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if mode not in registry.MODES:
        raise BulkImportError(f"mode must be one of {', '.join(registry.MODES)}, not {mode!r}")
    user = acting(user)
    users.require_upload(user, brand)
    created_by = user.name
    options = check_options(options, ds)
    if mapping:
        wrong = {c for c in mapping.values() if c and c not in ds.columns}
        if wrong:
            raise BulkImportError(
                f"mapping names unknown column(s) {sorted(wrong)}; dataset {dataset!r} has {', '.join(ds.columns)}"
            )
    upload = source if isinstance(source, Upload) else store_upload(source, file_name)
    try:
        earlier = [] if allow_duplicate else same_file_jobs(upload.sha256, dataset, brand)
        if earlier:
            raise DuplicateFile(
                duplicate_message(earlier[0]) + "; to import it again anyway use --allow-duplicate "
                "(allow_duplicate=True in Python)",
                earlier[0].id,
            )
        if not prechecked:
            check_file(upload, dataset, options, mapping)
    except BulkImportError:
        if not isinstance(source, Upload):  # the dashboard keeps its upload for the form
            discard_upload(upload)
        raise
    # With the lake's data in object storage the file goes there too, for workers on other hosts.
    job = registry.create(
        job_id=upload.job_id,
        dataset=dataset,
        brand=brand,
        file_name=upload.file_name,
        file_path=lake.keep_upload(upload.path, upload.job_id),
        file_sha256=upload.sha256,
        file_bytes=upload.size,
        created_by=created_by,
        options=options,
        mapping=mapping,
        mode=mode,
    )
    try:
        dispatch.send(dispatch.VALIDATE_AND_STAGE, job.id)
    except DispatchError as exc:
        registry.transition(job.id, PENDING, FAILED, actor=created_by, error=str(exc), note="not queued")
        exc.job_id = job.id
        raise
    return job


def review_state(job: registry.Job) -> dict:
    """What an approval of ``job`` covers now: diff counts, the lake snapshot and a fingerprint."""
    dataset = get_dataset(job.dataset)
    with lake.session() as con:
        lake.ensure_tables(con, dataset)
        counts = review.diff(con, job, dataset)
        return {
            "diff": counts.to_dict(),
            "snapshot": sql.current_snapshot(con),
            "fingerprint": review.fingerprint(con, job, dataset),
        }


def approve(job_id: str, *, user: users.User, confirm_deletes: bool = False) -> registry.Job:
    """Approve a staged job and send ``commit_to_production``.

    The approval records what the approver was shown (diff counts, deletes
    included, snapshot, fingerprint); the commit stops if the data changed
    since. Only an operator or admin of the job's brand who did not upload it
    may approve. A replace that would delete more than BULKIMPORT_REPLACE_GUARD_PERCENT
    of the brand's rows (or has rejected lines) raises ConfirmationNeeded unless
    ``confirm_deletes``. If the message cannot be sent, the approval is undone and
    DispatchError says why.
    """
    user = acting(user)
    job = visible_job(job_id, user)
    users.require_review(user, job.brand, job.created_by, "approve")
    approved_by = user.name
    if job.status != STAGED:
        raise InvalidTransition(f"job {job_id} is {job.status}; only a staged job can be approved")
    if approved_by in fixing.fixers(job_id):
        raise NotAllowed(
            f"{approved_by} fixed rows of this job and so may not approve it: a second person must (four eyes)"
        )
    dataset = get_dataset(job.dataset)
    dataset.require_version(job)
    state = review_state(job)
    counts = review.Diff.from_dict(state["diff"])
    if counts.rows_conflicting:
        raise BulkImportError(
            f"{counts.rows_conflicting} staged row(s) of this append job have keys that reached production after "
            "it was staged, and an append never updates: reject the job and import the file again"
        )
    guard = modes.confirmation_needed(job, counts, settings().replace_guard_share)
    if guard and not confirm_deletes:
        raise ConfirmationNeeded(f"{guard}. Confirm the deletes to approve (--confirm-deletes, confirm_deletes=True)")
    approval = {
        **state,
        "by": approved_by,
        "at": registry.now(),
        "dataset_version": dataset.version,
        "deletes_confirmed": bool(guard),
    }
    job = registry.transition(
        job_id, STAGED, APPROVED, actor=approved_by, approved_by=approved_by, error=None, approval=approval
    )
    try:
        dispatch.send(dispatch.COMMIT_TO_PRODUCTION, job.id)
    except DispatchError as exc:
        registry.transition(
            job_id,
            APPROVED,
            STAGED,
            actor=approved_by,
            approved_by=None,
            approval=None,
            error=f"approval undone: {exc}",
            note="commit not queued",
        )
        raise
    return job


def reject(job_id: str, *, user: users.User, reason: str = "") -> registry.Job:
    """Reject a staged job with a reason: nothing reaches production."""
    user = acting(user)
    job = visible_job(job_id, user)
    users.require_review(user, job.brand, action="reject")
    rejected_by = user.name
    if not reason.strip():
        raise BulkImportError("say why the job is rejected (a reason is required)")
    return registry.transition(job_id, STAGED, REJECTED, actor=rejected_by, error=f"rejected: {reason}", note=reason)


def revert(job_id: str, *, user: users.User) -> registry.Job:
    """Queue the revert of a committed job (``revert_commit`` in a worker).

    Rows it inserted are removed and rows it updated get their previous
    values back, as a new snapshot; refused if a later import changed them.
    """
    user = acting(user)
    job = visible_job(job_id, user)
    users.require_review(user, job.brand, action="revert")
    reverted_by = user.name
    job = registry.transition(job_id, COMMITTED, REVERTING, actor=reverted_by, error=None)
    try:
        dispatch.send(dispatch.REVERT_COMMIT, job.id)
    except DispatchError as exc:
        registry.transition(job_id, REVERTING, COMMITTED, actor=reverted_by, error=f"revert not queued: {exc}")
        raise
    return job


def cancel(job_id: str, *, user: users.User) -> registry.Job:
    """Cancel a pending or validating job; a worker stops at its next chunk and stages nothing."""
    user = acting(user)
    job = visible_job(job_id, user)
    cancelled_by = user.name
    if user.name != job.created_by:
        users.require_review(user, job.brand, action="cancel")
    return registry.transition(
        job_id, (PENDING, VALIDATING), CANCELLED, actor=cancelled_by, error=f"cancelled by {cancelled_by}"
    )


def retry(job_id: str, *, user: users.User) -> registry.Job:
    """Run a failed job again from where it failed (same file, same options and mapping)."""
    user = acting(user)
    job = visible_job(job_id, user)
    retried_by = user.name
    if user.name != job.created_by:
        users.require_review(user, job.brand, action="retry")
    if job.status != FAILED:
        raise InvalidTransition(f"job {job_id} is {job.status}; only a failed job can be retried")
    before = [e.from_status for e in registry.events(job_id) if e.to_status == FAILED][-1]
    resume = {COMMITTING: APPROVED, APPROVED: APPROVED, REVERTING: REVERTING}.get(before, PENDING)
    actor = dispatch.ACTOR_FOR[resume]
    job = registry.transition(job_id, FAILED, resume, actor=retried_by, error=None, attempts=0, note="retry")
    try:
        dispatch.send(actor, job.id)
    except DispatchError as exc:
        registry.transition(job_id, resume, FAILED, actor=retried_by, error=str(exc), note="retry not queued")
        raise
    return job


def dataset_changed(job: registry.Job) -> bool:
    """True when the dataset's definition is not the one that validated the job (approval needs a re-check)."""
    try:
        get_dataset(job.dataset).require_version(job)
    except DatasetChanged:
        return True
    return False


def recheck(job_id: str, *, user: users.User) -> registry.Job:
    """Validate a staged job again, against the dataset as it is now (same file, options and mapping).

    What a job needs when its dataset changed after it was staged. Its uploader or
    an operator may ask; its staged and rejected rows are replaced.
    """
    user = acting(user)
    job = visible_job(job_id, user)
    rechecked_by = user.name
    if user.name != job.created_by:
        users.require_review(user, job.brand, action="re-check")
    if job.status != STAGED:
        raise InvalidTransition(f"job {job_id} is {job.status}; only a staged job can be checked again")
    note = f"re-check against dataset version {get_dataset(job.dataset).version}"
    job = registry.transition(
        job_id, STAGED, PENDING, actor=rechecked_by, error=None, attempts=0, approval=None, note=note
    )
    try:
        dispatch.send(dispatch.VALIDATE_AND_STAGE, job.id)
    except DispatchError as exc:
        registry.transition(job_id, PENDING, STAGED, actor=rechecked_by, error=str(exc), note="re-check not queued")
        raise
    return job


def wait(
    job_id: str,
    until: Iterable[str] = (STAGED, *FINAL),
    timeout: float = 600,
    poll: float = 1.0,
    on_change=None,
    on_poll=None,
) -> registry.Job:
    """Block until the job reaches one of ``until``; TimeoutError names the state it is stuck in.

    Woken by the status notification each transition sends through Redis; reads the
    registry at least every ``poll`` seconds as well (progress, or Redis away).
    ``on_change(job)`` runs when the status changes, ``on_poll(job)`` on every read.
    """
    until = set(until)
    deadline = time.monotonic() + timeout
    last = None
    with progress.StatusWatch(job_id) as watch:
        while True:
            job = registry.get(job_id)
            if on_change and job.status != last:
                on_change(job)
                last = job.status
            if on_poll:
                on_poll(job)
            if job.status in until:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} is still {job.status} after {timeout:.0f}s; is a worker running? "
                    "(`bulkimport worker`)"
                )
            watch.wait(min(poll, max(0.0, deadline - time.monotonic())))
