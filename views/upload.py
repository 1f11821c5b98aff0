"""Upload a CSV or .xlsx: store it, preview what the worker will read, adjust, submit. Then watch it."""

import pandas as pd
import streamlit as st

from bulkimport import registry, ui, workflow
from bulkimport.config import settings
from bulkimport.datasets import all_datasets
from bulkimport.errors import BulkImportError, DispatchError, JobNotFound
from bulkimport.stages import modes

IGNORE = "(ignore)"
SAMPLE_ROWS = 10

user = ui.require_user()


def stored_upload(uploaded) -> workflow.Upload | None:
    """The file in the uploader, stored once under BULKIMPORT_HOME/uploads; an abandoned one is removed."""
    file_id = uploaded.file_id if uploaded is not None else None
    stored = st.session_state.get(ui.UPLOAD_STORED)
    if stored and stored[0] != file_id:  # removed from the uploader or replaced by another file
        workflow.discard_upload(stored[1])
        for key in (ui.UPLOAD_STORED, ui.UPLOAD_PREVIEWS, ui.UPLOAD_MAPPING_BASE):
            st.session_state.pop(key, None)
        stored = None
    if uploaded is None or file_id == st.session_state.get(ui.UPLOAD_SUBMITTED):
        return None
    if stored is None:
        uploaded.seek(0)
        try:
            upload = workflow.store_upload(uploaded, file_name=uploaded.name)
        except BulkImportError as exc:  # over the size cap, or the uploads folder cannot be written
            st.error(ui.escape(exc))
            return None
        st.session_state[ui.UPLOAD_STORED] = stored = (file_id, upload)
    return stored[1]


def submit(
    upload: workflow.Upload,
    file_id: str,
    dataset: str,
    brand: str,
    options: dict,
    mapping: dict | None,
    mode: str,
    allow_duplicate: bool,
) -> None:
    ui.watch_changes()
    try:
        job = workflow.submit(
            upload,
            dataset=dataset,
            brand=brand,
            user=user,
            options=options,
            mapping=mapping,
            mode=mode,
            allow_duplicate=allow_duplicate,
            prechecked=True,  # the preview read it in a limited child process, with the same check
        )
    except DispatchError as exc:
        ui.flash_error(exc)
        if getattr(exc, "job_id", None):  # the job exists, marked failed with the reason: it can be retried
            done(exc.job_id, file_id)
        return
    except BulkImportError as exc:
        ui.flash_error(exc)
        return
    done(job.id, file_id)
    ui.flash(
        "success",
        f"Uploaded {ui.escape(upload.file_name)}: job **{job.id}** is queued for validation (mode {mode}).",
    )
    warning = ui.nothing_consumes(job)
    if warning:
        ui.flash("warning", warning)


def done(job_id: str, file_id: str) -> None:
    """The stored file now belongs to a job: never discard it, do not preview it again."""
    st.session_state[ui.LAST_UPLOAD] = job_id
    st.session_state[ui.UPLOAD_SUBMITTED] = file_id
    for key in (ui.UPLOAD_STORED, ui.UPLOAD_PREVIEWS, ui.UPLOAD_MAPPING_BASE, ui.UPLOAD_DUPLICATE_OK):
        st.session_state.pop(key, None)


def read_options(kind_xlsx: bool, sheets: list[str], detected: dict) -> dict:
    """The "advanced" overrides; empty fields keep what was detected."""
    options = {}
    with st.expander("Advanced: how to read the file", icon=":material/tune:"):
        st.caption("Leave a field empty to keep what was detected.")
        if kind_xlsx:
            left, right = st.columns(2)
            options["sheet"] = left.selectbox(
                "Sheet",
                sheets,
                index=None,
                key=ui.UPLOAD_SHEET,
                placeholder=f"first sheet ({sheets[0]})" if sheets else "first sheet",
            )
            header_col = right
        else:
            enc, delim, quote, escape, header_col = st.columns(5)
            options["encoding"] = enc.text_input(
                "Encoding",
                key=ui.UPLOAD_ENCODING,
                placeholder=f"detected: {detected.get('encoding', '?')}",
                help="utf-8, utf-8-sig, utf-16-le, utf-16-be, cp1252, latin-1, ...",
            )
            delimiter = delim.text_input(
                "Delimiter",
                key=ui.UPLOAD_DELIMITER,
                max_chars=3,
                placeholder=f"detected: {shown(detected.get('delimiter'))}",
                help="One character; type `tab` for a tab.",
            )
            options["delimiter"] = "\t" if delimiter.strip().lower() in ("tab", "\\t") else delimiter
            options["quote"] = quote.text_input(
                "Quote",
                key=ui.UPLOAD_QUOTE,
                max_chars=4,
                placeholder=f"detected: {shown(detected.get('quote'))}",
                help="One character, or `none` when the file quotes nothing (quotes are inch marks, say).",
            )
            options["escape"] = escape.text_input(
                "Escape",
                key=ui.UPLOAD_ESCAPE,
                max_chars=4,
                placeholder=f"detected: {shown(detected.get('escape'))}",
                help="One character (`\\` for backslash escapes), or `none` for doubled quotes.",
            )
            spaces = st.selectbox(
                "Spaces after a delimiter",
                [None, "skip", "keep"],
                key=ui.UPLOAD_SPACES,
                format_func=lambda v: {
                    None: f"detected: {'skipped' if detected.get('skip_initial_space') else 'kept'}",
                    "skip": 'skipped (`a, "b"`: the space is not part of the cell)',
                    "keep": "kept as part of the cell",
                }[v],
            )
            options["skip_initial_space"] = None if spaces is None else spaces == "skip"
        options["header_row"] = header_col.number_input(
            "Header on line",
            key=ui.UPLOAD_HEADER_ROW,
            min_value=1,
            value=None,
            step=1,
            placeholder=f"detected: {detected.get('header_line', '?')}",
            help="The line (or sheet row) that holds the column names; lines above it are skipped.",
        )
    return {k: int(v) if k == "header_row" else v for k, v in options.items() if v not in (None, "")}


def header_options(first_look: workflow.Preview | None) -> dict:
    """What the worker found in the header, offered to a person: read the file as having no header
    line, or read a header that seems to have lost a delimiter as written."""
    options = {}
    if first_look is None:
        return options
    if first_look.headerless or st.session_state.get(ui.UPLOAD_NO_HEADER):
        st.info(
            "The first line looks like data, not a header: its values pass the dataset's checks in the "
            "dataset's column order.",
            icon=":material/table_rows:",
        )
        options["no_header"] = st.checkbox("No header: columns in dataset order", key=ui.UPLOAD_NO_HEADER) or None
    if first_look.dialect.get("header_split") or st.session_state.get(ui.UPLOAD_HEADER_AS_WRITTEN):
        as_written = st.checkbox("Read the header as written", key=ui.UPLOAD_HEADER_AS_WRITTEN)
        options["header_split"] = "none" if as_written else None
    return {k: v for k, v in options.items() if v is not None}


def show_readings(found: workflow.Preview) -> None:
    """What the worker noticed, and the readings it weighed with why it chose one."""
    for note in found.notes:
        st.warning(ui.escape(note), icon=":material/build:")
    if len(found.readings) > 1:
        with st.expander("How the file's dialect was chosen", icon=":material/balance:"):
            st.dataframe(
                pd.DataFrame(
                    {
                        "chosen": ["yes" if r["chosen"] else "" for r in found.readings],
                        "reading": [r["reading"] for r in found.readings],
                        "header names": [r["header_names"] for r in found.readings],
                        "rows read cleanly": [
                            "" if r["rows_read_cleanly"] is None else f"{r['rows_read_cleanly']} of {r['sample_rows']}"
                            for r in found.readings
                        ],
                        "why": [r["why"] for r in found.readings],
                    }
                ),
                hide_index=True,
            )


def shown(value) -> str:
    if value in (None, ""):
        return "none"
    return "tab" if value == "\t" else repr(value) if isinstance(value, str) else str(value)


def describe_dialect(dialect: dict, file_name: str) -> str:
    line = dialect.get("header_line")
    skipped = f" ({line - 1} line(s) above it skipped)" if line and line > 1 else ""
    name = ui.escape(file_name)
    if dialect.get("kind") == "xlsx":
        return f"Read **{name}** as an Excel workbook, header on row {line}{skipped}."
    spaces = ", spaces after a delimiter skipped" if dialect.get("skip_initial_space") else ""
    header = f"header on line **{line}**{skipped}" if line else "**no header line**"
    return (
        f"Read **{name}** with encoding **{ui.escape(dialect.get('encoding'))}**, "
        f"delimiter **{ui.escape(shown(dialect.get('delimiter')))}**, "
        f"quote **{ui.escape(shown(dialect.get('quote')))}**, "
        f"escape **{ui.escape(shown(dialect.get('escape')))}**{spaces}, "
        f"{header}."
    )


def mapping_editor(found: workflow.Preview, columns: list[str]) -> dict[str, str | None]:
    """The column mapping as an editable table; returns file column -> dataset column (None: ignored)."""
    base = [(h, found.mapping.get(h) or IGNORE) for h in found.header]
    if st.session_state.get(ui.UPLOAD_MAPPING_BASE) != base:  # another file, dataset or dialect: start afresh
        st.session_state.pop(ui.UPLOAD_MAPPING, None)
        st.session_state[ui.UPLOAD_MAPPING_BASE] = base
    frame = pd.DataFrame(
        {
            "file column": found.header,
            "dataset column": [c for _, c in base],
            "suggestion": [found.suggestions.get(h, "") for h in found.header],
        }
    )
    edited = st.data_editor(
        frame,
        key=ui.UPLOAD_MAPPING,
        hide_index=True,
        num_rows="fixed",
        disabled=["file column", "suggestion"],
        column_config={
            "file column": st.column_config.TextColumn("file column", help="As written in the file's header"),
            "dataset column": st.column_config.SelectboxColumn(
                "dataset column",
                options=[IGNORE, *columns],
                required=True,
                help="Where the worker puts this column's values; (ignore) drops it",
            ),
            "suggestion": st.column_config.TextColumn(
                "suggestion", help="A close name among the dataset's unmatched columns: offered, not applied"
            ),
        },
    )
    return {
        row["file column"]: None if row["dataset column"] in (IGNORE, None) else row["dataset column"]
        for row in edited.to_dict("records")
    }


st.title("Upload a CSV")
ui.show_flash()

datasets = all_datasets()
names = list(datasets)
left, right = st.columns(2)
dataset = left.selectbox(
    "Dataset",
    names,
    key=ui.UPLOAD_DATASET,
    persist_state="session",
    index=names.index(ui.DEFAULT_DATASET) if ui.DEFAULT_DATASET in names else 0,
)
if ui.may_enter_any_brand(user):
    brand = (
        right.text_input(
            "Brand",
            key=ui.UPLOAD_BRAND,
            persist_state="session",
            placeholder="e.g. acme",
            help="Any brand (you may import for all): 1-64 letters, digits, '.', '_' or '-'",
        )
        or ""
    ).strip()
elif user.brands:
    brand = right.selectbox(
        "Brand", sorted(user.brands), key=ui.UPLOAD_BRAND, persist_state="session", help="The brands you may import for"
    )
else:
    st.error(
        f"{ui.escape(user.name)} may not import for any brand; an admin can add brands with `bulkimport users add`."
    )
    st.stop()
ds = datasets[dataset]
st.caption(
    f"{ds.description}  \nRequired columns: {', '.join(ds.required)}; key: {', '.join(ds.key)}; "
    f"all columns: {', '.join(ds.columns)}."
)

uploaded = st.file_uploader(
    "CSV or Excel file",
    type=["csv", "tsv", "txt", "xlsx"],
    key=ui.UPLOAD_FILE,
    max_upload_size=settings().upload_max_mb,
    help="The file is stored as it is and validated by a worker, row by row. "
    "Bigger files: `bulkimport submit` streams them.",
)
upload = stored_upload(uploaded)
if uploaded is not None and upload is None:
    st.caption(
        f"{ui.escape(uploaded.name)} was submitted as job `{st.session_state.get(ui.LAST_UPLOAD)}`. "
        "Choose another file for a new upload."
    )

if upload is not None:
    summary = st.container()
    sheets = ui.sheet_names(upload)
    try:
        first_look = ui.preview(upload, dataset, {}, None, brand or None)  # before overrides
    except BulkImportError:
        first_look = None
    detected = first_look.dialect if first_look else {}
    options = read_options(bool(sheets), sheets, detected)
    if not sheets:
        options.update(header_options(first_look))
    problem, found, mapping = None, None, None
    try:
        found = ui.preview(upload, dataset, options, None, brand or None)
    except BulkImportError as exc:
        problem = ui.escape(exc)
    if found is not None:
        summary.markdown(describe_dialect(found.dialect, upload.file_name))
        with summary:
            show_readings(found)
        st.subheader("Column mapping")
        if found.remembered:
            st.info(
                f"This mapping is the one chosen last time for a file with this header (brand {ui.escape(brand)}). "
                "It is sent with the job only as you submit it here.",
                icon=":material/history:",
            )
        chosen = mapping_editor(found, list(ds.columns))
        automatic = {h: found.mapping.get(h) for h in found.header}
        # The worker applies exactly the mapping sent with the job, else header matching: send what is on
        # screen whenever it is not plain header matching (a remembered one included).
        if chosen != automatic or found.remembered:
            mapping = chosen
            try:
                found = ui.preview(upload, dataset, options, mapping, brand or None)
            except BulkImportError as exc:
                problem = ui.escape(exc)
        twice = sorted({c for c in chosen.values() if c and list(chosen.values()).count(c) > 1})
        for column in twice:
            sources = [h for h, c in chosen.items() if c == column]
            st.warning(
                f"**{ui.escape(column)}** is chosen for {ui.escape(', '.join(map(repr, sources)))}: "
                f"only {ui.escape(repr(sources[-1]))} is used."
            )
        offered = {h: c for h, c in found.suggestions.items() if not chosen.get(h)}
        if offered:
            st.info(
                "Suggestions, not applied: "
                + "; ".join(f"{ui.escape(repr(h))} looks like **{ui.escape(c)}**" for h, c in offered.items())
                + ". Pick them under *dataset column* to use them.",
                icon=":material/lightbulb:",
            )
        if found.missing:
            problem = (
                f"Required column(s) missing: **{ui.escape(', '.join(found.missing))}**. Map a file column to "
                f"{'it' if len(found.missing) == 1 else 'them'} above; the file cannot be submitted without."
            )
        ignored = [h for h in found.header if h not in found.mapping]
        if ignored:
            st.caption(f"Ignored file columns: {ui.escape(', '.join(map(repr, ignored)))}.")
        st.subheader("First rows as the worker will read them")
        st.dataframe(
            found.sample, hide_index=True, column_config={"line": st.column_config.NumberColumn("line", format="%d")}
        )
    if problem:
        st.error(problem)
    st.subheader("Write mode")
    mode = st.radio(
        "How approving this job writes to production",
        registry.MODES,
        key=ui.UPLOAD_MODE,
        horizontal=True,
        captions=[modes.DESCRIPTIONS[m] for m in registry.MODES],
    )
    if mode == registry.REPLACE and brand:
        st.warning(
            f"Replace: once approved, the rows of brand **{ui.escape(brand)}** in production.{dataset} whose key "
            "is not in this file are **deleted**. The review shows how many, and which, before anyone approves.",
            icon=":material/delete_sweep:",
        )
    earlier = workflow.same_file_jobs(upload.sha256, dataset, brand) if brand else []
    duplicate_ok = True
    if earlier:
        st.warning(
            f"The same file twice: {ui.escape(workflow.duplicate_message(earlier[0]))}. Importing it again changes "
            "nothing unless production changed since.",
            icon=":material/content_copy:",
        )
        st.page_link(
            "views/review.py",
            label=f"Review job {earlier[0].id}",
            icon=":material/rate_review:",
            query_params={ui.QUERY_JOB: earlier[0].id},
        )
        duplicate_ok = st.checkbox("Import this file again anyway", key=ui.UPLOAD_DUPLICATE_OK)
    st.button(
        "Submit for validation",
        type="primary",
        key=ui.UPLOAD_SUBMIT,
        icon=":material/send:",
        disabled=bool(problem) or found is None or not brand or not duplicate_ok,
        on_click=submit,
        args=(upload, uploaded.file_id, dataset, brand, options, mapping, mode, bool(earlier)),
    )
    if not brand:
        st.caption("Type the brand first.")


def recent_jobs(busy: bool) -> None:
    ui.follow_changes(busy)
    recent = workflow.visible_jobs(user)[:20]
    if ui.any_in_flight(recent) != busy:  # refresh at the other pace from now on
        st.rerun()
    last_id = st.session_state.get(ui.LAST_UPLOAD)
    if last_id:
        try:
            last = registry.get(last_id)
        except JobNotFound:
            last = None
        if last:
            with st.container(border=True):
                st.markdown(
                    f"**Your last upload**: job `{last.id}` "
                    f"({ui.escape(last.file_name)}, {ui.escape(last.dataset)}/{ui.escape(last.brand)})"
                )
                ui.status_badge(last.status)
                if last.error:
                    ui.error_with_details(
                        f"Job {last.id} failed: {last.error}" if last.status == registry.FAILED else last.error,
                        failed=last.status == registry.FAILED,
                    )
                if last.status in (registry.VALIDATING, registry.PENDING):
                    ui.job_progress(last)
                st.page_link(
                    "views/review.py",
                    label=f"Review job {last.id}",
                    icon=":material/rate_review:",
                    query_params={ui.QUERY_JOB: last.id},
                )
    st.subheader("Recent jobs")
    ui.job_table(recent)


# Every REFRESH_S while a job is moving (the last upload's status follows it), every IDLE_REFRESH_S otherwise.
busy = ui.any_in_flight(workflow.visible_jobs(user)[:20])
st.fragment(recent_jobs, run_every=ui.REFRESH_S if busy else ui.IDLE_REFRESH_S)(busy)
