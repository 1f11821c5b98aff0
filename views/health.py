"""Is everything there and moving: Redis, workers, the queue, dead letters, jobs per status, doctor's checks.

Users who see every brand get every detail; others see their brands' jobs only, and no worker hosts, pids
or check details (paths, URLs).
"""

import time

import pandas as pd
import streamlit as st

from bulkimport import doctor, healing, progress, registry, ui, users
from bulkimport.config import masked, settings

user = ui.require_user()
everything = user.sees_all
st.title("Health")


@st.fragment(run_every=ui.HEALTH_REFRESH_S)
def live() -> None:
    health = progress.health()
    if not health.redis_ok:
        st.error(f"**Redis**: {ui.escape(masked(health.redis_error))}", icon=":material/cloud_off:")
        return
    where = f" at {ui.escape(masked(settings().redis_url))}" if everything else ""
    st.success(f"**Redis**{where} answers.", icon=":material/cloud_done:")

    st.subheader("Queue")
    stats = progress.queue_stats()
    waiting, delayed, dead, oldest = st.columns(4)
    waiting.metric("Waiting", stats.waiting, help="Messages ready for a worker")
    delayed.metric("Delayed", stats.delayed, help="Messages waiting for a retry's backoff")
    dead.metric("Dead-lettered", stats.dead_lettered, help="Messages dramatiq gave up on")
    oldest.metric(
        "Oldest waiting",
        "-" if stats.oldest_waiting_s is None else f"{stats.oldest_waiting_s:,.0f} s",
        help="Age of the oldest message no worker has taken yet",
    )
    st.caption(f"Queue `{stats.queue}`.")

    st.subheader("Workers")
    workers = progress.live_workers()
    if workers:
        now = time.time()
        rows = []
        for number, w in enumerate(workers, start=1):
            where = {"worker": w.get("id"), "host": w.get("host"), "pid": w.get("pid")} if everything else {}
            rows.append(
                {
                    **(where or {"worker": f"worker {number}"}),
                    "queues": ", ".join(w.get("queues", [])),
                    "threads": w.get("threads"),
                    "last heartbeat": f"{max(0.0, now - float(w.get('at') or now)):.0f} s ago",
                }
            )
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        if not health.workers_on_queue:
            st.warning(f"No worker consumes the queue `{settings().queue}`.")
    else:
        st.warning(
            "No worker is alive. Start one with `bulkimport worker` (or `make run`).", icon=":material/engineering:"
        )

    letters = healing.dead_letters()
    if letters:
        st.subheader("Dead-lettered messages")
        rows = []
        for message_id, message in letters:
            job_id = message.args[0] if message.args else None
            try:
                visible = job_id is not None and user.sees(registry.get(job_id).brand)
            except Exception:  # noqa: BLE001 - a message that names no job of ours
                visible = False
            trace = (message.options.get("traceback") or "").strip().splitlines()
            rows.append(
                {
                    "message": message_id,
                    "actor": message.actor_name,
                    "job": job_id if visible else "(not one of your brands)",
                    "error": masked(trace[-1]) if trace and visible else "",
                }
            )
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        st.caption("The reaper (in every worker, or `bulkimport reap`) marks their jobs failed.")


live()

st.subheader("Jobs per status" if everything else "Jobs of your brands per status")
counts = registry.count_by_status(brands=users.brand_filter(user))
if counts:
    st.dataframe(
        pd.DataFrame([{"status": s, "jobs": counts[s]} for s in registry.STATUSES if counts.get(s)]), hide_index=True
    )
else:
    st.caption("No jobs yet.")

st.subheader("Checks")
st.caption("What `bulkimport doctor` checks.")
checks = doctor.run()
st.dataframe(
    pd.DataFrame(
        [
            {
                "": "ok" if c.ok else "PROBLEM",
                "check": c.name,
                **({"detail": c.detail} if everything else {}),
                "hint": c.hint,
            }
            for c in checks
        ]
    ),
    hide_index=True,
)
if all(c.ok for c in checks):
    st.success("All checks pass.", icon=":material/check_circle:")
else:
    st.error("Some checks fail: see the hints above.", icon=":material/error:")
