"""The health banner: says loudly when Redis is down or no worker consumes the queue."""

from __future__ import annotations

import streamlit as st

from bulkimport import progress, registry, users, workflow
from bulkimport.config import masked, settings
from bulkimport.ui.keys import HEALTH_REFRESH_S, USER
from bulkimport.ui.login import session_alive
from bulkimport.ui.text import escape


def health_banner() -> None:
    """Say loudly when Redis is down or no worker consumes the queue. Runs on every page."""
    _sweep_uploads()
    _health_fragment()


@st.cache_data(ttl=3600, show_spinner=False)
def _sweep_uploads() -> int:
    """At most hourly per dashboard process: previews abandoned for a day leave the uploads folder
    (the dashboard's host holds them; workers' reapers see them only when they share its disk)."""
    try:
        return len(workflow.sweep_abandoned_uploads())
    except Exception:  # noqa: BLE001 - housekeeping must never break a page (the registry may be down)
        return 0


@st.fragment(run_every=HEALTH_REFRESH_S)
def _health_fragment() -> None:
    if not session_alive():  # logged out in another tab, or idle too long: every page shows it within seconds
        st.rerun(scope="app")
    render_health(progress.health())


def render_health(health: progress.Health) -> None:
    queue = settings().queue
    if not health.redis_ok:
        st.error(
            f"**The job broker is unreachable**: {escape(masked(health.redis_error))}\n\n"
            "Uploads cannot be queued and approvals cannot be sent until it is back. "
            "Start Redis, a worker and this dashboard together with `make run` (or `bulkimport up`), "
            "or set `REDIS_URL` to a Redis that is running.",
            icon=":material/cloud_off:",
        )
        return
    if health.workers_on_queue:
        return
    user = st.session_state.get(USER)
    counts = registry.count_by_status(brands=users.brand_filter(user) if user else [])
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


def nothing_consumes(job: registry.Job) -> str | None:
    """Right after sending work: what to say if no worker will pick it up (the banner catches up later)."""
    health = progress.health()
    if health.redis_ok and not health.workers_on_queue:
        return (
            f"Job {job.id} is queued, but **no worker consumes the queue `{settings().queue}`**: it stays "
            f"{job.status} until one starts (`bulkimport worker`, or `make run`)."
        )
    return None
