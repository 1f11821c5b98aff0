"""The dashboard's web server: app.py behind bulkimport's login (bulkimport.web), nothing else.

`bulkimport up` runs `streamlit run serve.py`; Streamlit finds ``app`` and serves app.py through it.
"""

import streamlit as st

from bulkimport import private, web

private.secure_process()  # uploads and previews this server writes are its owner's only
app = st.App("app.py", routes=web.routes(), middleware=web.middleware())
