"""The jobs of the user's brands, filtered, refreshing themselves; live progress of the ones running."""

import streamlit as st

from bulkimport import registry, ui, workflow
from bulkimport.datasets import all_datasets

user = ui.require_user()
st.title("Jobs")

left, middle, right = st.columns(3)
status = left.selectbox("Status", registry.STATUSES, index=None, placeholder="any status", key=ui.JOBS_STATUS)
dataset = middle.selectbox("Dataset", list(all_datasets()), index=None, placeholder="any dataset", key=ui.JOBS_DATASET)
if ui.may_enter_any_brand(user):
    brand = (right.text_input("Brand", key=ui.JOBS_BRAND, placeholder="any brand") or "").strip() or None
else:
    brand = right.selectbox(
        "Brand", sorted(user.brands), index=None, placeholder="any of your brands", key=ui.JOBS_BRAND
    )


def job_list(status: str | None, dataset: str | None, brand: str | None, busy: bool) -> None:
    ui.follow_changes(busy)
    jobs = workflow.visible_jobs(user, status=status, dataset=dataset, brand=brand)
    if ui.any_in_flight(jobs) != busy:  # refresh at the other pace from now on
        st.rerun()
    counts = {s: sum(j.status == s for j in jobs) for s in registry.STATUSES}
    if jobs:
        st.caption(" · ".join(f"{counts[s]} {s}" for s in registry.STATUSES if counts.get(s)))
    running = [j for j in jobs if j.status in registry.RUNNING]
    if running:
        st.subheader("In progress")
        for job in running:
            ui.job_progress(job)
    ui.job_table(jobs)
    if not jobs:
        return
    labels = {j.id: ui.job_label(j) for j in jobs}
    pick, go = st.columns([4, 1], vertical_alignment="bottom")
    chosen = pick.selectbox("Open a job in the review page", list(labels), format_func=labels.get, key=ui.JOBS_OPEN)
    with go:
        st.page_link(
            "views/review.py", label="Review", icon=":material/rate_review:", query_params={ui.QUERY_JOB: chosen}
        )


# Every REFRESH_S while a job is moving, every IDLE_REFRESH_S while none is: an idle page costs next to no CPU.
busy = ui.any_in_flight(workflow.visible_jobs(user, status=status, dataset=dataset, brand=brand))
st.fragment(job_list, run_every=ui.REFRESH_S if busy else ui.IDLE_REFRESH_S)(status, dataset, brand, busy)
