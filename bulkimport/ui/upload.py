"""The upload page's helpers: a preview in a limited child process, the sheets of a workbook."""

from __future__ import annotations

import json

import streamlit as st

from bulkimport import workflow
from bulkimport.errors import BulkImportError
from bulkimport.ui.keys import UPLOAD_PREVIEWS
from bulkimport.ui.login import require_user


def preview(
    upload: workflow.Upload, dataset: str, options: dict, mapping: dict | None, brand: str | None = None
) -> workflow.Preview:
    """A preview (in a child process with memory and time limits), remembered for the session: a rerun
    must not read the file again. With ``brand``, proposes that brand's remembered mapping."""
    from bulkimport import previews

    key = json.dumps([upload.job_id, dataset, options, mapping, brand], sort_keys=True, default=str)
    cache = st.session_state.setdefault(UPLOAD_PREVIEWS, {})
    if key not in cache:
        try:
            cache[key] = previews.preview(upload, dataset, options, mapping, brand=brand, user=require_user())
        except BulkImportError as exc:
            cache[key] = exc
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    result = cache[key]
    if isinstance(result, BulkImportError):
        raise result
    return result


def sheet_names(upload: workflow.Upload) -> list[str]:
    """The sheets of an .xlsx upload (empty for text files)."""
    from bulkimport.stages.read import is_xlsx

    if not is_xlsx(upload.path):
        return []
    import openpyxl

    book = openpyxl.load_workbook(upload.path, read_only=True)
    try:
        return list(book.sheetnames)
    finally:
        book.close()
