"""Upload a CSV: store it, record a job, queue its validation. Then watch recent jobs."""

import streamlit as st

from bulkimport import registry, ui, workflow
from bulkimport.datasets import all_datasets
from bulkimport.errors import BulkImportError, DispatchError, JobNotFound


def failed_submission(exc: DispatchError, dataset: str, brand: str) -> registry.Job | None:
    """The job a failed send left behind (marked failed with the error's text)."""
    job_id = getattr(exc, "job_id", None)
    if job_id:
        try:
            return registry.get(job_id)
        except JobNotFound:
            return None
    reason = str(exc)
    return next((j for j in registry.list_jobs(status=registry.FAILED, dataset=dataset, brand=brand, limit=50)
                 if j.error == reason), None)


st.title("Upload a CSV")

datasets = all_datasets()
names = list(datasets)
left, middle, right = st.columns(3)
dataset = left.selectbox(
    "Dataset", names, key=ui.UPLOAD_DATASET, persist_state="session",
    index=names.index(ui.DEFAULT_DATASET) if ui.DEFAULT_DATASET in names else 0,
)
brand = (middle.text_input("Brand", key=ui.UPLOAD_BRAND, persist_state="session", placeholder="e.g. acme",
                           help="1-64 letters, digits, '.', '_' or '-'") or "").strip()
with right:
    user = ui.user_name_input()
if dataset:
    ds = datasets[dataset]
    st.caption(f"{ds.description}  \nRequired columns: {', '.join(ds.required)}; key: {', '.join(ds.key)}; "
               f"all columns: {', '.join(ds.columns)}.")

uploaded = st.file_uploader("CSV file", type=["csv", "tsv", "txt"], key=ui.UPLOAD_FILE,
                            help="The file is stored as it is and validated by a worker, row by row.")

if st.button("Submit for validation", type="primary", key=ui.UPLOAD_SUBMIT, icon=":material/send:"):
    if uploaded is None:
        st.error("Choose a CSV file first.")
    elif not dataset:
        st.error("Choose a dataset first.")
    else:
        uploaded.seek(0)
        try:
            job = workflow.submit(uploaded, dataset=dataset, brand=brand, created_by=user, file_name=uploaded.name)
        except DispatchError as exc:
            st.error(str(exc))
            failed = failed_submission(exc, dataset, brand)
            if failed:
                st.session_state[ui.LAST_UPLOAD] = failed.id
        except BulkImportError as exc:
            st.error(str(exc))
        else:
            st.session_state[ui.LAST_UPLOAD] = job.id
            st.success(f"Uploaded {uploaded.name}: job **{job.id}** is queued for validation.")
            ui.warn_if_nothing_consumes(job)


@st.fragment(run_every=ui.REFRESH_S)
def recent_jobs() -> None:
    last_id = st.session_state.get(ui.LAST_UPLOAD)
    if last_id:
        try:
            last = registry.get(last_id)
        except JobNotFound:
            last = None
        if last:
            with st.container(border=True):
                st.markdown(f"**Your last upload**: job `{last.id}` ({last.file_name}, {last.dataset}/{last.brand})")
                ui.status_badge(last.status)
                if last.status == registry.FAILED:
                    st.error(f"Job {last.id} failed: {last.error}")
                elif last.error:
                    st.warning(last.error)
                if last.status == registry.VALIDATING:
                    ui.job_progress(last)
                st.page_link("views/review.py", label=f"Review job {last.id}", icon=":material/rate_review:",
                             query_params={ui.QUERY_JOB: last.id})
    st.subheader("Recent jobs")
    ui.job_table(registry.list_jobs(limit=20))


recent_jobs()
