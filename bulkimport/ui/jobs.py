"""Jobs on a page: status colours and badges, the job table, live progress, following changes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bulkimport import progress, registry
from bulkimport.registry import (
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    FIXING,
    PENDING,
    REJECTED,
    REVERTED,
    STAGED,
    VALIDATING,
)
from bulkimport.ui.keys import CHANGE_WAIT_S, QUERY_JOB, STATUS_WATCH
from bulkimport.ui.text import escape

STATUS_COLOURS = {
    PENDING: "orange",
    VALIDATING: "blue",
    STAGED: "violet",
    FIXING: "blue",
    APPROVED: "blue",
    COMMITTING: "blue",
    COMMITTED: "green",
    FAILED: "red",
    REJECTED: "red",
    CANCELLED: "gray",
    REVERTED: "gray",
}
STATUS_ICONS = {
    PENDING: ":material/schedule:",
    VALIDATING: ":material/sync:",
    STAGED: ":material/rate_review:",
    FIXING: ":material/sync:",
    APPROVED: ":material/thumb_up:",
    COMMITTING: ":material/sync:",
    COMMITTED: ":material/check_circle:",
    FAILED: ":material/error:",
    REJECTED: ":material/block:",
    CANCELLED: ":material/cancel:",
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
JOB_COLUMNS = (*registry.JOB_COLUMNS, "error")


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
    counts = ("rows_total", "rows_valid", "rows_rejected")
    for column in counts:  # not counted yet (pending, validating): blank, not "None"
        frame[column] = [count_text(n) for n in frame[column]]
    config = {
        "id": st.column_config.TextColumn("job"),
        "mode": st.column_config.TextColumn("mode", help="upsert, append or replace: how the commit writes"),
        "status": st.column_config.TextColumn("status"),
        "rows_total": st.column_config.TextColumn("rows"),
        "rows_valid": st.column_config.TextColumn("valid"),
        "rows_rejected": st.column_config.TextColumn("rejected"),
        "error": st.column_config.TextColumn("error", width="medium"),
        "created_by": st.column_config.TextColumn("by"),
        "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    }
    if links:
        frame.insert(frame.columns.get_loc("error"), "review", [review_url(j.id) for j in jobs])
        config["review"] = st.column_config.LinkColumn("review", display_text="open")
    styled = frame.style.map(_status_style, subset=["status"])
    st.dataframe(styled, hide_index=True, column_config=config, key=key)


def watch_changes() -> None:
    """Subscribe this session to job status changes from now on. Call before sending work to a
    worker, so that its first change (a quick worker's "staged") waits for the page, not the next tick."""
    if STATUS_WATCH not in st.session_state:
        st.session_state[STATUS_WATCH] = progress.StatusWatch()


def follow_changes(busy: bool) -> None:
    """Call first in a self-refreshing part of a page. While a job moves (``busy``), wait for the next
    status change (or CHANGE_WAIT_S); while none does, hold no Redis subscription at all."""
    watch = st.session_state.get(STATUS_WATCH)
    if not busy:
        if watch is not None:
            watch.close()
            del st.session_state[STATUS_WATCH]
    elif watch is None:  # a job someone else sent: follow it from the next refresh on
        watch_changes()
    else:
        watch.wait(CHANGE_WAIT_S)


def any_in_flight(jobs: list[registry.Job]) -> bool:
    """Whether any of the jobs waits for or is being moved by a worker."""
    return any(j.status in registry.IN_FLIGHT for j in jobs)


def count_text(n) -> str:
    """A row count for a table cell: grouped digits, or blank while the job has not been counted."""
    return "" if n is None or pd.isna(n) else f"{int(n):,}"


def timeline(job_id: str) -> list[dict]:
    """The job's events for a table: when, who (workers by pid and host, not their raw ids), what, why."""
    return [
        {
            "at": e.at[:23],
            "who": registry.actor_label(e.actor),
            "change": f"{e.from_status or '-'} -> {e.to_status}",
            "note": e.note or "",
        }
        for e in registry.events(job_id)
    ]


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
        counts = (
            f", {rows:,} rows read ({values.get('rows_valid') or 0:,} valid, "
            f"{values.get('rows_rejected') or 0:,} rejected)"
        )
    size = f", {_size(done)} of {_size(total)}" if total else ""
    st.progress(fraction, text=escape(f"{job.id}: {values.get('phase', job.status)}{counts}{size}"))
