"""Text on a page: data escaped so it is never markup, and messages that outlive a rerun."""

from __future__ import annotations

import re
import time

import streamlit as st

from bulkimport.config import masked
from bulkimport.ui.keys import FLASH

# Everything Markdown (and Streamlit's directives: :material/...:, :red[...], $...$) gives a meaning to.
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=&\"'])")


def escape(value: object) -> str:
    """``value`` as literal text inside anything Streamlit renders as Markdown: st.markdown, captions,
    alerts, labels, progress text. File names, header names, cell values, reasons, errors and notes
    come from files and people: never as markup, links, images or HTML.

    >>> print(escape("**x** [a](b)"))
    \\*\\*x\\*\\* \\[a\\]\\(b\\)
    """
    text = str(value).replace("\r", "")
    return _MARKUP.sub(r"\\\1", text).replace("\n", "  \n")


FLASH_SECONDS = 10  # a message stays this long: a job that moves on at once reruns the page right away


def flash(kind: str, text: str) -> None:
    """Queue a message (from a button callback) for the next renders: Markdown, so data in it goes
    through ``escape`` first (``flash_error`` does that for an exception's text)."""
    st.session_state.setdefault(FLASH, []).append((kind, text, time.monotonic()))


def flash_error(exc: Exception, kind: str = "error") -> None:
    flash(kind, escape(masked(exc)))


def show_flash() -> None:
    """The queued messages younger than FLASH_SECONDS (shown once would lose them to the rerun that a
    quick worker's status change causes a moment later)."""
    fresh = [m for m in st.session_state.pop(FLASH, []) if time.monotonic() - m[2] < FLASH_SECONDS]
    if fresh:
        st.session_state[FLASH] = fresh
    for kind, text, _ in fresh:
        {"error": st.error, "warning": st.warning, "success": st.success}.get(kind, st.info)(text)
