"""Previews in a child process with memory and time limits, so a hostile file cannot stall the dashboard.

The dashboard's process serves everyone: a workbook built to inflate, or a file that makes the
reader crawl, must cost one child process, not the server. The child is a plain interpreter
(``python -m bulkimport.previews``, never multiprocessing's spawn, which re-runs the Streamlit
script in children) that limits its own address space and CPU time before reading anything,
runs ``workflow.preview`` and answers in JSON on standard output.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bulkimport import users
from bulkimport.config import settings
from bulkimport.errors import BulkImportError, FileRefused

WALL_CLOCK_FACTOR = 2  # the child's CPU limit, plus waiting for a busy machine


def preview(
    upload,
    dataset: str,
    options: dict | None = None,
    mapping: dict[str, str] | None = None,
    *,
    brand: str | None = None,
    user: users.User | None = None,
):
    """``workflow.preview`` run in a limited child process; FileRefused when the file exceeds the limits."""
    from bulkimport.workflow import Preview, acting

    if brand is not None:  # checked here too: the child trusts what it is given
        users.require_upload(acting(user), brand)
    s = settings()
    request = {
        "upload": {k: str(v) if isinstance(v, Path) else v for k, v in upload.__dict__.items()},
        "dataset": dataset,
        "options": options or {},
        "mapping": mapping,
        "brand": brand,
        "user": user.name if user is not None else None,
        "memory_mb": s.preview_memory_mb,
        "seconds": s.preview_seconds,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bulkimport.previews"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=s.preview_seconds * WALL_CLOCK_FACTOR + 10,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        raise FileRefused(_too_costly(upload.file_name, s)) from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise FileRefused(_too_costly(upload.file_name, s)) from None
    if "error" in answer:
        raise (FileRefused if answer.get("refused") else BulkImportError)(answer["error"])
    found = answer["preview"]
    sample = pd.read_json(io.StringIO(found.pop("sample")), orient="split", dtype=False)
    return Preview(**found, sample=sample)


def _too_costly(file_name: str, s) -> str:
    return (
        f"{file_name}: reading it for a preview needed more than {s.preview_memory_mb} MB of memory or "
        f"{s.preview_seconds} s (BULKIMPORT_PREVIEW_MEMORY_MB, BULKIMPORT_PREVIEW_SECONDS); a real file of this "
        "size does not. Export the sheet as CSV, or submit it with `bulkimport submit`."
    )


def _child() -> None:
    request = json.loads(sys.stdin.read())
    limit = request["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (request["seconds"], request["seconds"] + 1))
    from bulkimport import workflow

    upload = workflow.Upload(**{**request["upload"], "path": Path(request["upload"]["path"])})
    user = users.get(request["user"]) if request["user"] else None
    try:
        found = workflow.preview(
            upload, request["dataset"], request["options"], request["mapping"], brand=request["brand"], user=user
        )
    except FileRefused as exc:
        print(json.dumps({"error": str(exc), "refused": True}))
        return
    except BulkImportError as exc:
        print(json.dumps({"error": str(exc)}))
        return
    except MemoryError:
        print(json.dumps({"error": _too_costly(upload.file_name, settings()), "refused": True}))
        return
    values = {name: getattr(found, name) for name in found.__dataclass_fields__ if name != "sample"}
    values["sample"] = found.sample.to_json(orient="split", index=False, date_format="iso", default_handler=str)
    print(json.dumps({"preview": values}, default=str))


if __name__ == "__main__":
    _child()
