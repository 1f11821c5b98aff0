"""Review one job: status, the diff against production, updates before/after, rejected and valid rows,
what the user may do with it (approve, reject, revert, cancel, retry) and its timeline."""

import streamlit as st

from bulkimport import fixing, registry, review_data, ui, workflow
from bulkimport.config import masked, settings
from bulkimport.datasets import get_dataset
from bulkimport.errors import BulkImportError, DispatchError, JobNotFound
from bulkimport.stages import modes

PREVIEW_ROWS = 200
REJECTED_SHOWN = 5_000
UPDATES_SHOWN = 50
# States in which the job's staged and rejected rows can be looked at.
REVIEWABLE = (
    registry.STAGED,
    registry.FIXING,
    registry.APPROVED,
    registry.COMMITTING,
    registry.COMMITTED,
    registry.REJECTED,
    registry.REVERTING,
    registry.REVERTED,
)
# States in which the diff against production now is what an approval would do.
DIFFABLE = (registry.STAGED, registry.APPROVED)

user = ui.require_user()


def on_pick() -> None:
    if st.session_state.get(ui.REVIEW_JOB):
        st.query_params[ui.QUERY_JOB] = st.session_state[ui.REVIEW_JOB]


def on_approve(job_id: str) -> None:
    ui.watch_changes()
    try:
        workflow.approve(job_id, user=user, confirm_deletes=bool(st.session_state.get(ui.REVIEW_CONFIRM_DELETES)))
    except DispatchError as exc:
        ui.flash(
            "error",
            f"{ui.escape(masked(exc))}\n\nThe approval was undone: job {job_id} is **staged** again. "
            "Approve again once the broker is back.",
        )
    except BulkImportError as exc:
        ui.flash_error(exc)
    else:
        ui.flash("success", f"Approved by {ui.escape(user.name)}. A worker now commits job {job_id} to production.")


def on_reject(job_id: str) -> None:
    reason = (st.session_state.get(ui.REVIEW_REASON) or "").strip()
    if not reason:
        ui.flash("error", "Say why before rejecting: the uploader sees the reason.")
        return
    try:
        workflow.reject(job_id, user=user, reason=reason)
    except BulkImportError as exc:
        ui.flash_error(exc)
    else:
        st.session_state.pop(ui.REVIEW_REASON, None)
        ui.flash("success", f"Rejected by {ui.escape(user.name)}: nothing from job {job_id} reaches production.")


def ask_worker(action, job_id: str, success: str) -> None:
    """Ask a worker for ``action`` on the job as this user; the page follows the job from now on."""
    ui.watch_changes()
    try:
        action(job_id, user=user)
    except BulkImportError as exc:
        ui.flash_error(exc)
    else:
        ui.flash("success", success)


def on_revert(job_id: str) -> None:
    ask_worker(
        workflow.revert,
        job_id,
        f"Revert of job {job_id} queued by {ui.escape(user.name)}: a worker removes the rows it inserted "
        "and restores the rows it updated.",
    )


def on_recheck(job_id: str) -> None:
    ask_worker(workflow.recheck, job_id, f"Job {job_id} sent to be checked again against the dataset as it is now.")


def on_cancel(job_id: str) -> None:
    ask_worker(
        workflow.cancel,
        job_id,
        f"Job {job_id} cancelled by {ui.escape(user.name)}; a worker on it stops at its next chunk.",
    )


def on_retry(job_id: str) -> None:
    ask_worker(
        workflow.retry,
        job_id,
        f"Job {job_id} sent again by {ui.escape(user.name)} (same file, same options and mapping).",
    )


def on_check_again(job_id: str, key: str, frame, columns: list[str]) -> None:
    """Send what was changed in the fixing grid (cells edited, suggestions ticked) to be checked again."""
    edits, accepted = ui.grid_edits(frame, st.session_state.get(key), columns)
    send_fix(job_id, edits, accepted)


def send_fix(job_id: str, edits: dict, accepted) -> None:
    if not edits and not accepted:
        ui.flash("warning", "Nothing changed yet: edit cells in the grid or tick a suggestion, then check again.")
        return
    ui.watch_changes()
    try:
        job = fixing.fix(job_id, edits, user=user, accept_suggestions=accepted)
    except BulkImportError as exc:
        ui.flash_error(exc)
    else:
        # The note quotes cell values: text, never markup.
        ui.flash("success", f"{ui.escape(fixing.last_request(job.id))}. A worker checks them again with the schema.")


def on_accept_all(job_id: str) -> None:
    send_fix(job_id, {}, True)


@st.cache_data(ttl=10, show_spinner="Reading staged and rejected rows ...")
def rows_of(job_id: str, updated_at: str, with_diff: bool, with_fixable: bool) -> review_data.ReviewData:
    """The job's rows and diff, cached per job version (updated_at) for a few seconds."""
    return review_data.for_review(
        job_id,
        with_diff=with_diff,
        updates_limit=UPDATES_SHOWN,
        rejected_limit=REJECTED_SHOWN,
        valid_limit=PREVIEW_ROWS,
        with_fixable=with_fixable,
    )


def download(job_id: str, what: str, fmt: str) -> bytes:
    """Rejected rows (to fix and upload again) or valid rows, as a safe CSV (formulas neutralised) or
    an .xlsx whose cells are text."""
    return review_data.download(job_id, what, fmt, user)


def approval_outdated(job: registry.Job) -> bool:
    """A commit came back to staged because production or the staged rows changed after the approval."""
    if job.status != registry.STAGED or not job.error:
        return False
    last = [e for e in registry.events(job.id) if e.to_status == registry.STAGED]
    return bool(last) and last[-1].note == "approval outdated"


def live_status(job_id: str, seen: tuple[str, str]) -> None:
    """Status, counts, error and progress; a change of state reruns the whole page."""
    ui.follow_changes(seen[0] in registry.IN_FLIGHT)
    job = registry.get(job_id)
    if (job.status, job.updated_at) != seen:
        st.rerun()
    ui.status_badge(job.status)
    total, valid, rejected = st.columns(3)
    total.metric("Rows total", job.rows_total if job.rows_total is not None else "-")
    valid.metric("Rows valid", job.rows_valid if job.rows_valid is not None else "-")
    rejected.metric("Rows rejected", job.rows_rejected if job.rows_rejected is not None else "-")
    if approval_outdated(job):
        st.error(
            f"**The approved commit did not run: production changed after the approval.** "
            f"{ui.escape(masked(job.error))}\n\n"
            "The diff below is fresh: review it and approve again.",
            icon=":material/sync_problem:",
        )
    elif job.error:
        ui.error_with_details(job.error, failed=job.status == registry.FAILED)
    if job.status == registry.FIXING:
        st.caption("A worker is checking the fixed rows again with the dataset's schema.")
    elif job.status in registry.RUNNING:
        ui.job_progress(job)
    elif job.status == registry.PENDING:
        st.caption("Waiting for a worker to start validating.")
    elif job.status == registry.APPROVED:
        st.caption("Approved; waiting for a worker to commit it.")


def show_approval(job: registry.Job) -> None:
    """What the approver was shown, as recorded with the approval."""
    approval = job.approval or {}
    counts = approval.get("diff") or {}
    deletes = f", **{counts['rows_to_delete']}** to delete" if counts.get("rows_to_delete") else ""
    if job.status in (registry.APPROVED, registry.COMMITTING):
        after = "The commit stops if the data changed since."
    elif job.status == registry.COMMITTED:
        after = "Committed as approved: the data had not changed since."
    else:
        after = ""
    st.info(
        f"Approved by **{ui.escape(approval.get('by', job.approved_by))}** at "
        f"{ui.escape(str(approval.get('at', ''))[:19])} UTC for "
        f"**{counts.get('rows_to_insert', '?')}** rows to insert, **{counts.get('rows_to_update', '?')}** to "
        f"update{deletes} and {counts.get('rows_unchanged', '?')} unchanged "
        f"(lake snapshot {approval.get('snapshot', '?')}). {after}",
        icon=":material/verified:",
    )


def actions(job: registry.Job, diff) -> None:
    """The buttons this user may use on this job, and why the others are missing."""
    reviewer = user.reviews and user.sees(job.brand)
    uploader = user.name == job.created_by
    fixer = job.status == registry.STAGED and user.name in fixing.fixers(job.id)
    if job.status == registry.STAGED:
        with st.container(border=True):
            st.subheader("Decision")
            approve, reject = st.columns(2)
            if workflow.dataset_changed(job):
                approve.warning(
                    f"The dataset {job.dataset} changed after this job was validated (version {job.dataset_version}, "
                    f"now {get_dataset(job.dataset).version}): approving needs a re-check against the new "
                    "definition first.",
                    icon=":material/sync_problem:",
                )
                if reviewer or uploader:
                    approve.button(
                        "Re-check against the new definition",
                        type="primary",
                        key=ui.REVIEW_RECHECK,
                        icon=":material/refresh:",
                        on_click=on_recheck,
                        args=(job.id,),
                    )
            elif reviewer and not uploader and not fixer:
                guard = modes.confirmation_needed(job, diff, settings().replace_guard_share) if diff else None
                if diff is not None:
                    deletes = f" and deletes {diff.rows_to_delete}" if diff.rows_to_delete else ""
                    approve.caption(
                        f"Writes {diff.rows_to_insert} new and {diff.rows_to_update} changed rows{deletes} in "
                        f"production.{job.dataset} for brand {job.brand}."
                    )
                if guard:
                    approve.warning(f"Replace: {ui.escape(guard)}.", icon=":material/delete_sweep:")
                    approve.checkbox(f"Yes, delete {diff.rows_to_delete:,} rows", key=ui.REVIEW_CONFIRM_DELETES)
                approve.button(
                    "Approve and commit to production",
                    type="primary",
                    key=ui.REVIEW_APPROVE,
                    icon=":material/check:",
                    on_click=on_approve,
                    args=(job.id,),
                    disabled=bool(guard) and not st.session_state.get(ui.REVIEW_CONFIRM_DELETES),
                )
            elif reviewer:
                did = "uploaded this job" if uploader else "fixed rows of this job"
                approve.info(
                    f"You {did}, so you may not approve it: a second operator or admin must "
                    "(four eyes). You may still reject it.",
                    icon=":material/group:",
                )
            else:
                approve.info(
                    f"An operator or admin of brand {job.brand} approves or rejects this job; you are an {user.role}.",
                    icon=":material/lock:",
                )
            if reviewer:
                reject.text_input(
                    "Reason for rejecting", key=ui.REVIEW_REASON, placeholder="e.g. prices are net, not gross"
                )
                reject.button(
                    "Reject", key=ui.REVIEW_REJECT, icon=":material/block:", on_click=on_reject, args=(job.id,)
                )
    elif job.status == registry.COMMITTED and reviewer:
        st.button(
            "Revert this import",
            key=ui.REVIEW_REVERT,
            icon=":material/undo:",
            on_click=on_revert,
            args=(job.id,),
            help="Removes the rows it inserted and restores the rows it updated, as a new "
            "snapshot; refused if a later import changed the same rows.",
        )
    elif job.status in (registry.PENDING, registry.VALIDATING) and (uploader or reviewer):
        st.button(
            "Cancel this job",
            key=ui.REVIEW_CANCEL,
            icon=":material/cancel:",
            on_click=on_cancel,
            args=(job.id,),
            help="A worker on it stops at its next chunk; nothing is staged.",
        )
    elif job.status == registry.FAILED and (uploader or reviewer):
        st.button(
            "Retry",
            key=ui.REVIEW_RETRY,
            icon=":material/replay:",
            on_click=on_retry,
            args=(job.id,),
            help="Runs the job again from where it failed: same file, same options and mapping.",
        )


def may_fix(job: registry.Job) -> bool:
    return job.status == registry.STAGED and bool(job.rows_rejected) and user.sees(job.brand)


def fix_in_place(job: registry.Job, found: fixing.Fixable) -> None:
    """The rejected lines in an editable grid, the repair suggestions, and "Check again"."""
    st.markdown(
        "**Fix rejected rows here.** Edit cells (columns marked ⚠ failed in some row; *problem* says where and "
        "why), tick a repair suggestion, then **Check again**: a worker checks the rows with the dataset's "
        "schema, and the ones that pass join the staged rows."
    )
    if found.total_lines > len(found.lines):
        st.caption(
            f"The first {len(found.lines):,} of {found.total_lines:,} rejected lines; fix the rest with "
            f"`bulkimport fix {job.id} --from fixed.csv`."
        )
    key = ui.fix_grid_key(job)
    frame = ui.fix_editor(found, key)
    check, accept_all, _ = st.columns([1, 1, 2])
    check.button(
        "Check again",
        type="primary",
        key=ui.REVIEW_FIX_CHECK,
        icon=":material/fact_check:",
        on_click=on_check_again,
        args=(job.id, key, frame, list(found.dataset.columns)),
    )
    if found.suggestions:
        accept_all.button(
            f"Accept all {len(found.suggestions)} suggestion(s)",
            key=ui.REVIEW_FIX_ACCEPT_ALL,
            icon=":material/auto_fix_high:",
            on_click=on_accept_all,
            args=(job.id,),
        )
        st.markdown(
            f"**Repair suggestions ({len(found.suggestions)})**: the one change that makes each damaged line "
            "pass the schema (changed cells highlighted). Nothing is applied until you accept it."
        )
        st.dataframe(ui.suggestion_table(found), hide_index=True)
    st.markdown("**Every problem, one row per failing cell**")


def rows(job: registry.Job) -> None:
    try:
        data = rows_of(job.id, job.updated_at, job.status in DIFFABLE, may_fix(job))
    except BulkImportError as exc:
        st.error(f"Could not read the job's rows from the lake: {ui.escape(masked(exc))}")
        actions(job, None)
        return
    if job.status in (registry.COMMITTED, registry.REVERTING, registry.REVERTED):
        st.subheader("Committed to production")
        inserted, updated, deleted = st.columns(3)
        inserted.metric("Rows inserted", job.rows_inserted if job.rows_inserted is not None else "-")
        updated.metric("Rows updated", job.rows_updated if job.rows_updated is not None else "-")
        if job.mode == registry.REPLACE:
            deleted.metric("Rows deleted", job.rows_deleted if job.rows_deleted is not None else "-")
    diff = data.diff
    if diff is not None:
        st.subheader(f"Against production.{job.dataset} (brand {job.brand}) now, {job.mode}")
        st.caption(f"Write mode **{job.mode}**: {modes.DESCRIPTIONS[job.mode]}.")
        if job.mode == registry.APPEND:
            insert, conflicts = st.columns(2)
            insert.metric("Rows to insert", diff.rows_to_insert)
            conflicts.metric("Keys already in production", diff.rows_conflicting)
        else:
            insert, update, same, *gone = st.columns(4 if job.mode == registry.REPLACE else 3)
            insert.metric("Rows to insert", diff.rows_to_insert)
            update.metric("Rows to update", diff.rows_to_update)
            same.metric("Rows unchanged", diff.rows_unchanged)
            if gone:
                gone[0].metric(
                    "Rows to delete",
                    diff.rows_to_delete,
                    help=f"{diff.delete_share:.0%} of the brand's {diff.production_rows:,} rows in production",
                )
        if diff.changed_columns:
            st.caption(
                "Changes per column: "
                + ", ".join(f"**{ui.escape(c)}** in {n} row(s)" for c, n in diff.changed_columns.items())
            )
        if not data.before.empty:
            shown = f"the first {UPDATES_SHOWN}" if diff.rows_to_update > UPDATES_SHOWN else "all"
            st.markdown(f"**Updates: {shown} of {diff.rows_to_update}, before and after** (changed cells highlighted)")
            st.dataframe(
                ui.changes_side_by_side(data.before, data.after, list(get_dataset(job.dataset).key)), hide_index=True
            )
        if not data.deletes.empty:
            shown = "all" if diff.rows_to_delete <= len(data.deletes) else f"the first {len(data.deletes)}"
            st.markdown(
                f"**Deletes: {shown} of {diff.rows_to_delete}**, rows of brand {job.brand} in production that "
                "this file does not have (reverting the import brings them back)"
            )
            st.dataframe(data.deletes, hide_index=True)
    if job.approval:
        show_approval(job)
    actions(job, diff)

    rejected_tab, valid_tab = st.tabs([f"Rejected rows ({job.rows_rejected})", f"Valid rows ({job.rows_valid})"])
    with rejected_tab:
        if data.rejected.empty:
            st.success("No row was rejected.")
        else:
            if data.fixable is not None:
                fix_in_place(job, data.fixable)
            if len(data.rejected) >= REJECTED_SHOWN:
                st.caption(f"First {REJECTED_SHOWN:,} problems; download the CSV for all of them.")
            st.dataframe(
                data.rejected,
                hide_index=True,
                column_config={
                    "line": st.column_config.NumberColumn("line", format="%d"),
                    "raw": st.column_config.TextColumn("raw line", width="large"),
                },
            )
            csv_button, xlsx_button = st.columns(2)
            csv_button.download_button(
                "Download rejected rows to fix and upload again (CSV)",
                lambda: download(job.id, "rejected", "csv"),
                file_name=f"{job.id}-rejected.csv",
                mime="text/csv",
                key=ui.REVIEW_DOWNLOAD_REJECTED,
                icon=":material/download:",
                help="One row per rejected line in the file's own columns, plus line, reason, column and detail; "
                "cells a spreadsheet would run as formulas are neutralised.",
            )
            xlsx_button.download_button(
                "Rejected rows as Excel (.xlsx, every cell text)",
                lambda: download(job.id, "rejected", "xlsx"),
                file_name=f"{job.id}-rejected.xlsx",
                mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                key=ui.REVIEW_DOWNLOAD_REJECTED_XLSX,
                icon=":material/table_view:",
            )
            st.caption(f"Or from a shell: `bulkimport export {job.id} --rejected rejected.csv`")
    with valid_tab:
        if len(data.valid) >= PREVIEW_ROWS:
            st.caption(f"The first {PREVIEW_ROWS} valid rows, by line in the file.")
        st.dataframe(
            data.valid, hide_index=True, column_config={"line": st.column_config.NumberColumn("line", format="%d")}
        )
        if len(data.valid):
            csv_button, xlsx_button = st.columns(2)
            csv_button.download_button(
                "Download valid rows (CSV)",
                lambda: download(job.id, "staged", "csv"),
                file_name=f"{job.id}-valid.csv",
                mime="text/csv",
                key=ui.REVIEW_DOWNLOAD_VALID,
                icon=":material/download:",
                help="Cells a spreadsheet would run as formulas are neutralised.",
            )
            xlsx_button.download_button(
                "Valid rows as Excel (.xlsx, every cell text)",
                lambda: download(job.id, "staged", "xlsx"),
                file_name=f"{job.id}-valid.xlsx",
                mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                key=ui.REVIEW_DOWNLOAD_VALID_XLSX,
                icon=":material/table_view:",
            )


st.title("Review")
ui.show_flash()

jobs = workflow.visible_jobs(user)
wanted = st.query_params.get(ui.QUERY_JOB)
refused = False
if wanted and wanted not in {j.id for j in jobs}:
    try:
        extra = registry.get(wanted)
    except JobNotFound:
        extra = None
    if extra is not None and user.sees(extra.brand):  # older than the list
        jobs.insert(0, extra)
    else:  # the same answer whether it exists or not: other brands' job ids are not to be probed
        st.warning(f"Job `{wanted}`: not found or not yours.", icon=":material/search_off:")
        refused = True
if not jobs:
    st.info("No jobs of your brands yet: upload a CSV first.")
    st.page_link("views/upload.py", label="Upload a CSV", icon=":material/upload_file:")
    st.stop()

labels = {j.id: ui.job_label(j) for j in jobs}
if refused:
    st.session_state[ui.REVIEW_JOB] = None
elif wanted in labels:
    st.session_state[ui.REVIEW_JOB] = wanted
elif st.session_state.get(ui.REVIEW_JOB) not in labels:
    st.session_state[ui.REVIEW_JOB] = jobs[0].id
job_id = st.selectbox(
    "Job",
    list(labels),
    format_func=labels.get,
    key=ui.REVIEW_JOB,
    on_change=on_pick,
    placeholder="choose one of your jobs",
)
if not job_id:
    st.stop()
st.query_params[ui.QUERY_JOB] = job_id
job = registry.get(job_id)

st.caption(
    f"File **{ui.escape(job.file_name)}** ({job.file_bytes:,} bytes, sha256 {job.file_sha256[:12]}…) · dataset "
    f"**{ui.escape(job.dataset)}** · brand **{ui.escape(job.brand)}** · mode **{job.mode}** · uploaded by "
    f"**{ui.escape(job.created_by)}** at {job.created_at[:19]} UTC"
    + (f" · approved by **{ui.escape(job.approved_by)}**" if job.approved_by else "")
)
# Often while a worker moves the job, seldom while it waits for a person (staged), never once it is final.
pace = ui.REFRESH_S if job.status in registry.IN_FLIGHT else None if job.is_final else ui.IDLE_REFRESH_S
st.fragment(live_status, run_every=pace)(job.id, (job.status, job.updated_at))

if job.status in REVIEWABLE and job.rows_total is not None:
    rows(job)
else:
    actions(job, None)

st.subheader("Timeline")
st.dataframe(ui.timeline(job.id), hide_index=True)
