"""The bulkimport dashboard: who is logged in, then a router over the views in views/, nothing else.

Served behind the login page by serve.py (`bulkimport up`): a refresh, a new tab and a pasted link carry the
session cookie, and a link opened before logging in comes back here after it.
"""

import streamlit as st

from bulkimport import ui

st.set_page_config(page_title="bulkimport", page_icon=":material/upload_file:", layout="wide")
user = ui.current_user()
if user is None:
    ui.login_form()
    st.stop()
ui.user_sidebar(user)
ui.health_banner()
ui.keep_datasets_current()
views = [
    st.Page("views/upload.py", title="Upload", icon=":material/upload_file:", default=True),
    st.Page("views/jobs.py", title="Jobs", icon=":material/list_alt:"),
    st.Page("views/review.py", title="Review", icon=":material/rate_review:"),
    st.Page("views/datasets.py", title="Datasets", icon=":material/table_view:"),
    st.Page("views/health.py", title="Health", icon=":material/monitor_heart:"),
]
st.navigation(views).run()
