"""Review one job: live status, counts, the diff against production, rejected and valid rows; approve or reject."""

import streamlit as st

from bulkimport import api, registry, ui, workflow
from bulkimport.errors import BulkImportError, DispatchError, JobNotFound

PREVIEW_ROWS = 200
REJECTED_SHOWN = 5_000
# States in which the job's staged and rejected rows can be looked at.
REVIEWABLE = (registry.STAGED, registry.APPROVED, registry.COMMITTING, registry.COMMITTED, registry.REJECTED,
              registry.REVERTED)


def on_pick() -> None:
    st.query_params[ui.QUERY_JOB] = st.session_state[ui.REVIEW_JOB]


def on_approve(job_id: str) -> None:
    name = (st.session_state.get(ui.USER_NAME) or "").strip()
    if not name:
        ui.flash("error", "Type your name before approving: it is recorded as the approver.")
        return
    try:
        workflow.approve(job_id, approved_by=name)
    except DispatchError as exc:
        ui.flash("error", f"{exc}\n\nThe approval was undone: job {job_id} is **staged** again. "
                          "Approve again once the broker is back.")
    except BulkImportError as exc:
        ui.flash("error", str(exc))
    else:
        ui.flash("success", f"Approved by {name}. A worker now commits job {job_id} to production.")


def on_reject(job_id: str) -> None:
    name = (st.session_state.get(ui.USER_NAME) or "").strip()
    reason = (st.session_state.get(ui.REVIEW_REASON) or "").strip()
    if not name or not reason:
        ui.flash("error", "Type your name and a reason before rejecting: the uploader sees both.")
        return
    try:
        workflow.reject(job_id, rejected_by=name, reason=reason)
    except BulkImportError as exc:
        ui.flash("error", str(exc))
    else:
        ui.flash("success", f"Rejected by {name}: nothing from job {job_id} reaches production.")


@st.cache_data(ttl=10, show_spinner="Reading staged and rejected rows ...")
def review_data(job_id: str, updated_at: str):
    """Diff, rejected rows and a preview of valid rows; cached per job version (updated_at)."""
    with ui.LAKE_LOCK:
        return (api.diff(job_id).to_dict(), api.rejected(job_id).limit(REJECTED_SHOWN).df(),
                api.staged(job_id).limit(PREVIEW_ROWS).df())


def rejected_csv(job_id: str) -> bytes:
    with ui.LAKE_LOCK:
        return api.rejected(job_id).df().to_csv(index=False).encode()


def live_status(job_id: str, seen: tuple[str, str]) -> None:
    """Status, counts, error and progress; a change of state reruns the whole page."""
    job = registry.get(job_id)
    if (job.status, job.updated_at) != seen:
        st.rerun()
    ui.status_badge(job.status)
    total, valid, rejected = st.columns(3)
    total.metric("Rows total", job.rows_total if job.rows_total is not None else "-")
    valid.metric("Rows valid", job.rows_valid if job.rows_valid is not None else "-")
    rejected.metric("Rows rejected", job.rows_rejected if job.rows_rejected is not None else "-")
    if job.error:
        (st.error if job.status == registry.FAILED else st.warning)(f"Error: {job.error}")
    if job.status in (registry.VALIDATING, registry.COMMITTING):
        ui.job_progress(job)
    elif job.status == registry.PENDING:
        st.caption("Waiting for a worker to start validating.")
    elif job.status == registry.APPROVED:
        st.caption("Approved; waiting for a worker to commit it.")


st.title("Review")

jobs = registry.list_jobs()
wanted = st.query_params.get(ui.QUERY_JOB)
if wanted and wanted not in {j.id for j in jobs}:
    try:
        jobs.insert(0, registry.get(wanted))
    except JobNotFound as exc:
        st.warning(str(exc))
if not jobs:
    st.info("No jobs yet: upload a CSV first.")
    st.page_link("views/upload.py", label="Upload a CSV", icon=":material/upload_file:")
    st.stop()

labels = {j.id: ui.job_label(j) for j in jobs}
if wanted in labels:
    st.session_state[ui.REVIEW_JOB] = wanted
elif st.session_state.get(ui.REVIEW_JOB) not in labels:
    st.session_state[ui.REVIEW_JOB] = jobs[0].id
job_id = st.selectbox("Job", list(labels), format_func=labels.get, key=ui.REVIEW_JOB, on_change=on_pick)
st.query_params[ui.QUERY_JOB] = job_id
job = registry.get(job_id)

st.caption(
    f"File **{job.file_name}** ({job.file_bytes:,} bytes, sha256 {job.file_sha256[:12]}…) · dataset "
    f"**{job.dataset}** · brand **{job.brand}** · uploaded by **{job.created_by}** at {job.created_at[:19]} UTC"
    + (f" · approved by **{job.approved_by}**" if job.approved_by else "")
)
ui.show_flash()
st.fragment(live_status, run_every=None if job.is_final else ui.REFRESH_S)(job.id, (job.status, job.updated_at))

if job.status in REVIEWABLE and job.rows_total is not None:
    try:
        diff, rejected_rows, valid_rows = review_data(job.id, job.updated_at)
    except BulkImportError as exc:
        st.error(f"Could not read the job's rows from the lake: {exc}")
        diff = rejected_rows = valid_rows = None
    if job.status == registry.COMMITTED:
        st.subheader("Committed to production")
        inserted, updated, _ = st.columns(3)
        inserted.metric("Rows inserted", job.rows_inserted if job.rows_inserted is not None else "-")
        updated.metric("Rows updated", job.rows_updated if job.rows_updated is not None else "-")
    elif diff is not None:
        st.subheader(f"Against production.{job.dataset} (brand {job.brand}) now")
        insert, update, same = st.columns(3)
        insert.metric("Rows to insert", diff["rows_to_insert"])
        update.metric("Rows to update", diff["rows_to_update"])
        same.metric("Rows unchanged", diff["rows_unchanged"])

    if job.status == registry.STAGED:
        with st.container(border=True):
            st.subheader("Decision")
            ui.user_name_input()
            approve, reject = st.columns(2)
            if diff is not None:
                approve.caption(f"Writes {diff['rows_to_insert']} new and {diff['rows_to_update']} changed rows to "
                                f"production.{job.dataset} for brand {job.brand}.")
            approve.button("Approve and commit to production", type="primary", key=ui.REVIEW_APPROVE,
                           icon=":material/check:", on_click=on_approve, args=(job.id,))
            reject.text_input("Reason for rejecting", key=ui.REVIEW_REASON,
                              placeholder="e.g. prices are net, not gross")
            reject.button("Reject", key=ui.REVIEW_REJECT, icon=":material/block:", on_click=on_reject,
                          args=(job.id,))

    if rejected_rows is not None:
        rejected_tab, valid_tab = st.tabs([f"Rejected rows ({job.rows_rejected})", f"Valid rows ({job.rows_valid})"])
        with rejected_tab:
            if rejected_rows.empty:
                st.success("No row was rejected.")
            else:
                if len(rejected_rows) >= REJECTED_SHOWN:
                    st.caption(f"First {REJECTED_SHOWN:,} problems; download the CSV for all of them.")
                st.dataframe(rejected_rows, hide_index=True, column_config={
                    "line": st.column_config.NumberColumn("line", format="%d"),
                    "raw": st.column_config.TextColumn("raw line", width="large"),
                })
                st.download_button("Download rejected rows (CSV)", lambda: rejected_csv(job.id),
                                   file_name=f"{job.id}-rejected.csv", mime="text/csv",
                                   key=ui.REVIEW_DOWNLOAD_REJECTED, icon=":material/download:")
                st.caption(f"Or from a shell: `bulkimport export {job.id} --rejected rejected.csv`")
        with valid_tab:
            if len(valid_rows) >= PREVIEW_ROWS:
                st.caption(f"The first {PREVIEW_ROWS} valid rows, by line in the file.")
            st.dataframe(valid_rows, hide_index=True)

st.subheader("Timeline")
st.dataframe(
    [{"at": e.at[:23], "actor": e.actor, "change": f"{e.from_status or '-'} -> {e.to_status}", "note": e.note or ""}
     for e in registry.events(job.id)],
    hide_index=True,
)
