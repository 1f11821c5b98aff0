"""The datasets beside the lake: tables kept in step, their status, drafts from an upload."""

from __future__ import annotations

import streamlit as st

from bulkimport import workflow
from bulkimport.config import settings
from bulkimport.datasets import all_datasets
from bulkimport.errors import BulkImportError
from bulkimport.ui.keys import DATASETS_DRAFTS


def keep_datasets_current() -> None:
    """On start and whenever a dataset module changes: bring the lake's tables in step (additive changes)."""
    try:
        versions = tuple((name, d.version) for name, d in all_datasets().items())
    except BulkImportError:
        return  # a broken dataset module: the views that use datasets say so
    _keep_current(versions, str(settings().lake_catalog))


@st.cache_resource(ttl=60, show_spinner="Comparing the datasets with the lake ...")
def _keep_current(versions: tuple, lake_catalog: str) -> dict:
    """Once a minute at most per set of dataset versions (the arguments are the cache key): a lake that was
    unreachable, or a migration a person ran meanwhile, is seen again soon."""
    from bulkimport import schema_evolution

    return schema_evolution.keep_all_current(actor="dashboard")


@st.cache_data(ttl=10, show_spinner=False)
def lake_status(name: str, version: str) -> dict:
    """How a dataset's lake tables differ from this version (read only), for the Datasets view."""
    from bulkimport import schema_evolution

    try:
        found = schema_evolution.status(all_datasets()[name])
        history = schema_evolution.migrations(name)
    except Exception as exc:  # noqa: BLE001 - the view still describes the dataset
        return {"error": str(exc)}
    return {
        "tables_exist": found.tables_exist,
        "additive": [c.describe() for c in found.additive],
        "breaking": [c.describe() for c in found.breaking],
        "history": history,
    }


def draft_from_upload(name: str, uploaded) -> object:
    """A draft dataset module from a file in the uploader (kept for the session); raises BulkImportError."""
    from bulkimport import dataset_draft

    key = (name, uploaded.file_id)
    drafts = st.session_state.setdefault(DATASETS_DRAFTS, {})
    if key not in drafts:
        upload = workflow.store_upload(uploaded, uploaded.name)
        try:
            drafts[key] = dataset_draft.draft(name, upload.path, uploaded.name)
        except BulkImportError as exc:
            drafts[key] = exc
        except Exception as exc:  # noqa: BLE001 - a sample nothing can be learnt from: say so on the page
            drafts[key] = BulkImportError(f"could not draft a dataset from {uploaded.name}: {exc}")
        finally:
            workflow.discard_upload(upload)
    result = drafts[key]
    if isinstance(result, BulkImportError):
        raise result
    return result
