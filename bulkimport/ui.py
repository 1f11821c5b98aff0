"""Small Streamlit helpers shared by the dashboard's pages.

The health banner, the job table, status colours, live progress, and every
session-state key in one place. Nothing here talks to the broker: it only
reads health and progress from Redis and jobs from the registry.
"""

from __future__ import annotations

import threading

import pandas as pd
import streamlit as st

from bulkimport import progress, registry
from bulkimport.config import settings
from bulkimport.registry import (
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    PENDING,
    REJECTED,
    REVERTED,
    STAGED,
    VALIDATING,
)

# How often self-refreshing parts of a page re-read the registry (seconds).
REFRESH_S = 2
# The health banner re-checks Redis and workers on its own, a little less often.
HEALTH_REFRESH_S = 5
# Query parameter that names the job on the review page (?job=<id>).
QUERY_JOB = "job"
DEFAULT_DATASET = "products"

# Session-state keys. Widgets that keep their value across pages use persist_state="session".
USER_NAME = "bi_user_name"  # "your name": shared by the upload and review pages
UPLOAD_DATASET = "bi_upload_dataset"
UPLOAD_BRAND = "bi_upload_brand"
UPLOAD_FILE = "bi_upload_file"
UPLOAD_SUBMIT = "bi_upload_submit"
LAST_UPLOAD = "bi_last_upload"  # id of the job this session submitted last
JOBS_STATUS = "bi_jobs_status"
JOBS_DATASET = "bi_jobs_dataset"
JOBS_BRAND = "bi_jobs_brand"
JOBS_OPEN = "bi_jobs_open"
REVIEW_JOB = "bi_review_job"
REVIEW_REASON = "bi_review_reason"
REVIEW_APPROVE = "bi_review_approve"
REVIEW_REJECT = "bi_review_reject"
REVIEW_DOWNLOAD_REJECTED = "bi_review_download_rejected"
FLASH = "bi_flash"  # messages from button callbacks, shown once on the next render

STATUS_COLOURS = {
    PENDING: "orange", VALIDATING: "blue", STAGED: "violet", APPROVED: "blue", COMMITTING: "blue",
    COMMITTED: "green", FAILED: "red", REJECTED: "red", CANCELLED: "gray", REVERTED: "gray",
}
STATUS_ICONS = {
    PENDING: ":material/schedule:", VALIDATING: ":material/sync:", STAGED: ":material/rate_review:",
    APPROVED: ":material/thumb_up:", COMMITTING: ":material/sync:", COMMITTED: ":material/check_circle:",
    FAILED: ":material/error:", REJECTED: ":material/block:", CANCELLED: ":material/cancel:",
    REVERTED: ":material/undo:",
}
# Cell colours for the status column (light tints with dark text: readable in both themes).
_CELL_STYLES = {
    "orange": "background-color: #ffe4c2; color: #7a3d00",
    "blue": "background-color: #d8e7ff; color: #0b3b8c",
    "violet": "background-color: #ebe1ff; color: #4b2593",
    "green": "background-color: #d3f5dd; color: #0f5c2a",
    "red": "background-color: #ffd9d9; color: #8a1111",
    "gray": "background-color: #e6e8eb; color: #3a3f45",
}
JOB_COLUMNS = ("id", "dataset", "brand", "status", "rows_total", "rows_valid", "rows_rejected", "created_by",
               "created_at", "error")

# The API shares one DuckDB connection per process and Streamlit runs sessions in
# threads; DuckDB connections are not safe to use from two threads at once.
LAKE_LOCK = threading.Lock()


# ---------------------------------------------------------------- health banner

def health_banner() -> None:
    """Say loudly when Redis is down or no worker consumes the queue. Runs on every page."""
    _health_fragment()


@st.fragment(run_every=HEALTH_REFRESH_S)
def _health_fragment() -> None:
    render_health(progress.health())


def render_health(health: progress.Health) -> None:
    queue = settings().queue
    if not health.redis_ok:
        st.error(
            f"**The job broker is unreachable**: {health.redis_error}\n\n"
            "Uploads cannot be queued and approvals cannot be sent until it is back. "
            "Start Redis, a worker and this dashboard together with `make run` (or `bulkimport up`), "
            "or set `REDIS_URL` to a Redis that is running.",
            icon=":material/cloud_off:",
        )
        return
    if health.workers_on_queue:
        return
    counts = registry.count_by_status()
    waiting = sum(counts.get(status, 0) for status in registry.IN_FLIGHT)
    if waiting or health.queue_depth:
        others = f" ({len(health.workers)} worker(s) run, on other queues)" if health.workers else ""
        st.warning(
            f"**{waiting} job(s) waiting, {health.queue_depth} message(s) queued, and no worker consumes the "
            f"queue `{queue}`**{others}. Nothing moves until one runs: start one with `bulkimport worker` "
            "(or `make run`).",
            icon=":material/warning:",
        )
    else:
        st.info(
            f"No worker is running on the queue `{queue}`. Uploads will wait in the queue until one starts "
            "(`bulkimport worker`, or `make run`).",
            icon=":material/info:",
        )


def warn_if_nothing_consumes(job: registry.Job) -> None:
    """Right after sending work: say so if no worker will pick it up (the banner catches up later)."""
    health = progress.health()
    if health.redis_ok and not health.workers_on_queue:
        st.warning(
            f"Job {job.id} is queued, but **no worker consumes the queue `{settings().queue}`**: it stays "
            f"{job.status} until one starts (`bulkimport worker`, or `make run`).",
            icon=":material/warning:",
        )


# ---------------------------------------------------------------- jobs

def status_badge(status: str) -> None:
    st.badge(status, color=STATUS_COLOURS.get(status, "gray"), icon=STATUS_ICONS.get(status))


def _status_style(status: str) -> str:
    return _CELL_STYLES[STATUS_COLOURS.get(status, "gray")]


def review_url(job_id: str) -> str:
    """Relative link to the review page for a job (works under any base path)."""
    return f"review?{QUERY_JOB}={job_id}"


def job_label(job: registry.Job) -> str:
    return f"{job.id} · {job.status} · {job.dataset}/{job.brand} · {job.file_name} · {job.created_at[:19]}"


def job_table(jobs: list[registry.Job], *, key: str | None = None, links: bool = True) -> None:
    """Jobs as a table with a coloured status column and a link to each job's review."""
    if not jobs:
        st.caption("No jobs yet.")
        return
    frame = pd.DataFrame([j.to_dict() for j in jobs], columns=list(JOB_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    frame["error"] = frame["error"].fillna("")
    config = {
        "id": st.column_config.TextColumn("job"),
        "status": st.column_config.TextColumn("status"),
        "rows_total": st.column_config.NumberColumn("rows", format="%d"),
        "rows_valid": st.column_config.NumberColumn("valid", format="%d"),
        "rows_rejected": st.column_config.NumberColumn("rejected", format="%d"),
        "error": st.column_config.TextColumn("error", width="medium"),
        "created_by": st.column_config.TextColumn("by"),
        "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    }
    if links:
        frame.insert(frame.columns.get_loc("error"), "review", [review_url(j.id) for j in jobs])
        config["review"] = st.column_config.LinkColumn("review", display_text="open")
    styled = frame.style.map(_status_style, subset=["status"])
    st.dataframe(styled, hide_index=True, column_config=config, key=key)


def _size(n: float | None) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def job_progress(job: registry.Job) -> None:
    """A progress bar from what the worker last published for the job."""
    values = progress.read(job.id)
    if not values:
        st.progress(0.0, text=f"{job.id}: {job.status}, no progress reported yet")
        return
    total = values.get("bytes_total") or job.file_bytes or 0
    done = values.get("bytes_read") or 0
    fraction = min(1.0, done / total) if total else 0.0
    rows = values.get("rows_read")
    counts = ""
    if rows is not None:
        counts = (f", {rows:,} rows read ({values.get('rows_valid') or 0:,} valid, "
                  f"{values.get('rows_rejected') or 0:,} rejected)")
    size = f", {_size(done)} of {_size(total)}" if total else ""
    st.progress(fraction, text=f"{job.id}: {values.get('phase', job.status)}{counts}{size}")


# ---------------------------------------------------------------- user and messages

def user_name_input(label: str = "Your name") -> str:
    """The user's name, kept for the whole session (login comes later)."""
    value = st.text_input(label, key=USER_NAME, persist_state="session", placeholder="e.g. jdoe",
                          help="Recorded on the job and its events.")
    return (value or "").strip()


def flash(kind: str, text: str) -> None:
    """Queue a message (from a button callback) for the next render."""
    st.session_state.setdefault(FLASH, []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop(FLASH, []):
        {"error": st.error, "warning": st.warning, "success": st.success}.get(kind, st.info)(text)
