"""A file before it is a job: stored under a safe name, previewed the way the worker will read it, checked.

Used by the dashboard, the CLI and notebooks, through ``bulkimport.workflow`` (which re-exports these names).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from bulkimport import registry, users
from bulkimport.access import acting
from bulkimport.config import settings
from bulkimport.datasets import get_dataset
from bulkimport.errors import BulkImportError, JobNotFound, UploadTooLarge
from bulkimport.stages import read
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
