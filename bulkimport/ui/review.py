"""The review page's helpers: changes side by side, a job's error, the grid that fixes rejected rows."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from bulkimport import registry
from bulkimport.config import masked
from bulkimport.ui.jobs import _CELL_STYLES
from bulkimport.ui.keys import REVIEW_FIX_GRID
from bulkimport.ui.text import escape


def changes_side_by_side(before: pd.DataFrame, after: pd.DataFrame, key: list[str]):
    """Before/after rows interleaved (one pair per key), changed cells highlighted: a pandas Styler."""
    rows = []
    for (_, old), (_, new) in zip(before.iterrows(), after.iterrows(), strict=True):
        rows.append({"": "before", **old.to_dict()})
        rows.append({"": "after", **new.to_dict()})
    frame = pd.DataFrame(rows, columns=["", *before.columns])
    changed = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for i in range(0, len(frame), 2):
        for column in before.columns:
            if column in key:
                continue
            old, new = frame.at[i, column], frame.at[i + 1, column]
            if not (pd.isna(old) and pd.isna(new)) and (pd.isna(old) or pd.isna(new) or old != new):
                changed.at[i, column] = _CELL_STYLES["red"]
                changed.at[i + 1, column] = _CELL_STYLES["green"]
    return frame.style.apply(lambda _: changed, axis=None)


def error_with_details(error: str, *, failed: bool) -> None:
    """A job's error: its first line loudly, the rest (a traceback) behind an expander."""
    error = masked(error)
    lines = error.strip().splitlines() or [""]
    head = lines[0] if len(lines[0]) <= 400 else lines[0][:400] + " …"
    (st.error if failed else st.warning)(escape(head), icon=":material/error:" if failed else ":material/warning:")
    if len(lines) > 1 or len(lines[0]) > 400:
        with st.expander("Details"):
            st.code(error, language=None, wrap_lines=True)


# ---------------------------------------------------------------- fixing rejected rows

FIX_LEAD = ["line", "accept"]  # the box that takes a row's repair suggestion, in view
FIX_TAIL = ["reason", "problem", "suggestion"]  # beside the row's cells, the cells to edit first
FIX_READ_ONLY = ["line", "reason", "problem", "suggestion"]
# Column widths in pixels (a dataset column: FIX_CELL_PX): the grid fits a laptop screen, and the
# browser test finds a cell's place on the canvas.
FIX_WIDTHS = {"line": 60, "accept": 70, "reason": 130, "problem": 300, "suggestion": 280}
FIX_CELL_PX = 100
FAILING = " ⚠"  # marks, in the grid's header, a column where some row failed


def fix_grid_key(job: registry.Job) -> str:
    """The grid's widget key: per job version, so edits start afresh once a check comes back."""
    return f"{REVIEW_FIX_GRID}_{job.id}_{job.updated_at}"


def fix_grid(found) -> tuple[pd.DataFrame, dict]:
    """A job's rejected lines (a fixing.Fixable) as an editable table and its column settings.

    Columns: line, a box to accept the row's repair suggestion, the dataset's columns as text,
    reason, problem (what failed, where) and the suggestion. Cells hold text ("" for empty), as in
    the file.
    """
    columns = list(found.dataset.columns)
    rows = []
    for rejected in found.lines:
        suggestion = found.suggestions.get(rejected.line)
        rows.append(
            {
                "line": rejected.line,
                "reason": ", ".join(rejected.reasons),
                "problem": "; ".join(rejected.details)
                + ("" if rejected.fits else f" (the line as read: {rejected.raw})"),
                **{c: rejected.cells.get(c) or "" for c in columns},
                "suggestion": suggestion.change if suggestion else "",
                "accept": False,
            }
        )
    frame = pd.DataFrame(rows, columns=[*FIX_LEAD, *columns, *FIX_TAIL])
    frame = frame.astype({c: "object" for c in columns})
    failing = {c for r in found.lines for c in r.columns}
    config = {
        "line": st.column_config.NumberColumn(
            "line", format="%d", help="Line in the uploaded file", width=FIX_WIDTHS["line"]
        ),
        "reason": st.column_config.TextColumn("reason", width=FIX_WIDTHS["reason"]),
        "problem": st.column_config.TextColumn(
            "problem", width=FIX_WIDTHS["problem"], help="What failed, in which column"
        ),
        "suggestion": st.column_config.TextColumn(
            "repair suggestion",
            width=FIX_WIDTHS["suggestion"],
            help="The one repair that passes the schema; see below",
        ),
        "accept": st.column_config.CheckboxColumn(
            "accept", width=FIX_WIDTHS["accept"], help="Take the repair suggestion of this row"
        ),
    }
    for column in columns:
        marked = column in failing
        config[column] = st.column_config.TextColumn(
            column + (FAILING if marked else ""),
            width=FIX_CELL_PX,
            help="Rows failed here: see problem" if marked else None,
        )
    return frame, config


def _styled_fix_grid(frame: pd.DataFrame):
    """Reason and problem in red, a suggestion in green (the grid styles only the columns it does not edit)."""
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    styles[["reason", "problem"]] = _CELL_STYLES["red"]
    styles.loc[frame["suggestion"] != "", "suggestion"] = _CELL_STYLES["green"]
    return frame.style.apply(lambda _: styles, axis=None)


def fix_editor(found, key: str) -> pd.DataFrame:
    """The fixing grid; returns its frame as shown (the edits are in session state under ``key``)."""
    frame, config = fix_grid(found)
    st.data_editor(
        _styled_fix_grid(frame),
        key=key,
        hide_index=True,
        num_rows="fixed",
        disabled=FIX_READ_ONLY,
        column_config=config,
    )
    return frame


def grid_edits(frame: pd.DataFrame, state: Mapping | None, columns: list[str]) -> tuple[dict[int, dict], list[int]]:
    """What a person changed in the fixing grid: ``{line: {column: text}}`` and the lines whose suggestion
    they ticked (from the editor's ``edited_rows``)."""
    edits, accepted = {}, []
    for index, changed in ((state or {}).get("edited_rows") or {}).items():
        line = int(frame.iloc[int(index)]["line"])
        if changed.get("accept") and frame.iloc[int(index)]["suggestion"]:
            accepted.append(line)
        cells = {c: (v or None) for c, v in changed.items() if c in columns}
        if cells:
            edits[line] = cells
    return edits, sorted(accepted)


def suggestion_table(found):
    """Each repair suggestion as two rows, the line as read and as it would be, changed cells highlighted."""
    header = [str(h) for h in (found.job.dialect or {}).get("header") or []]
    width = max([len(header)] + [len(s.cells_before) for s in found.suggestions.values()])
    names = header + [f"(extra {i + 1})" for i in range(width - len(header))]
    rows, marks = [], []
    for line, suggestion in sorted(found.suggestions.items()):
        before = suggestion.cells_before + [""] * (width - len(suggestion.cells_before))
        after = suggestion.cells_after + [""] * (width - len(suggestion.cells_after))
        rows.append({"line": line, "": "as read", **dict(zip(names, before, strict=True))})
        rows.append({"line": line, "": "suggested", **dict(zip(names, after, strict=True))})
        marks.append([b != a for b, a in zip(before, after, strict=True)])
    frame = pd.DataFrame(rows, columns=["line", "", *names])
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for i, changed in enumerate(marks):
        for name, differs in zip(names, changed, strict=True):
            if differs:
                styles.at[2 * i, name] = _CELL_STYLES["red"]
                styles.at[2 * i + 1, name] = _CELL_STYLES["green"]
    return frame.style.apply(lambda _: styles, axis=None)
