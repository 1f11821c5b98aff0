"""The bulkimport dashboard: a router over the pages in pages/, nothing else."""

import streamlit as st

from bulkimport import ui

st.set_page_config(page_title="bulkimport", page_icon=":material/upload_file:", layout="wide")
ui.health_banner()
st.navigation([
    st.Page("pages/upload.py", title="Upload", icon=":material/upload_file:", default=True),
    st.Page("pages/jobs.py", title="Jobs", icon=":material/list_alt:"),
    st.Page("pages/review.py", title="Review", icon=":material/rate_review:"),
]).run()
