"""Small Streamlit helpers shared by the dashboard's views.

Who is logged in (a session from bulkimport.web's login, or OIDC), the health
banner, the job table, status colours, live progress, upload previews, the one
escaping helper (``escape``: data is never markup), and every session-state key in
one place. Nothing here talks to the broker: it only reads health and progress
from Redis and jobs from the registry.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Mapping

import pandas as pd
import streamlit as st

from bulkimport import progress, registry, sessions, users, web, workflow
from bulkimport.config import masked, settings
from bulkimport.datasets import all_datasets
from bulkimport.errors import BulkImportError, NotAllowed
from bulkimport.registry import (
    APPROVED,
    CANCELLED,
    COMMITTED,
    COMMITTING,
    FAILED,
    FIXING,
    PENDING,
    REJECTED,
    REVERTED,
    STAGED,
    VALIDATING,
)

# How often self-refreshing parts of a page re-read the registry (seconds): often while a job moves,
# seldom while none does (other people's uploads still show up within IDLE_REFRESH_S).
REFRESH_S = 0.5
IDLE_REFRESH_S = 10
# While a job moves, each refresh first waits up to this long for a status change from Redis, so a page
# shows "staged" the moment the worker says so rather than on its next tick (kept below REFRESH_S).
CHANGE_WAIT_S = 0.35
# The health banner re-checks Redis and workers on its own, a little less often.
HEALTH_REFRESH_S = 5
# Query parameter that names the job on the review page (?job=<id>).
QUERY_JOB = "job"
DEFAULT_DATASET = "products"

# Session-state keys. Widgets that keep their value across pages use persist_state="session".
STATUS_WATCH = "bi_status_watch"  # this session's progress.StatusWatch while a job it shows moves
USER = "bi_user"  # the logged-in bulkimport.users.User, as of this run
SESSION = "bi_session"  # id of the login session (bulkimport.sessions) this browser's cookie names
LOGIN_SUBMIT = "bi_login_submit"
LOGOUT = "bi_logout"
UPLOAD_DATASET = "bi_upload_dataset"
UPLOAD_BRAND = "bi_upload_brand"
UPLOAD_FILE = "bi_upload_file"
UPLOAD_STORED = "bi_upload_stored"  # (uploader file id, workflow.Upload) of the file being previewed
UPLOAD_SUBMITTED = "bi_upload_submitted"  # uploader file id of the file that became the last job
UPLOAD_ENCODING = "bi_upload_encoding"
UPLOAD_DELIMITER = "bi_upload_delimiter"
UPLOAD_QUOTE = "bi_upload_quote"
UPLOAD_ESCAPE = "bi_upload_escape"
UPLOAD_HEADER_ROW = "bi_upload_header_row"
UPLOAD_SHEET = "bi_upload_sheet"
UPLOAD_SPACES = "bi_upload_spaces"  # spaces after a delimiter: detected, skipped or kept
UPLOAD_NO_HEADER = "bi_upload_no_header"  # the file has no header line: columns in dataset order
UPLOAD_HEADER_AS_WRITTEN = "bi_upload_header_as_written"  # do not cut a header cell that seems to have lost a delimiter
UPLOAD_MAPPING = "bi_upload_mapping"  # the mapping editor's edits
UPLOAD_MAPPING_BASE = "bi_upload_mapping_base"  # what the editor's edits apply to
UPLOAD_PREVIEWS = "bi_upload_previews"  # recent previews, so a rerun does not read the file again
UPLOAD_SUBMIT = "bi_upload_submit"
UPLOAD_DISCARD = "bi_upload_discard"
LAST_UPLOAD = "bi_last_upload"  # id of the job this session submitted last
JOBS_STATUS = "bi_jobs_status"
JOBS_DATASET = "bi_jobs_dataset"
JOBS_BRAND = "bi_jobs_brand"
JOBS_OPEN = "bi_jobs_open"
REVIEW_JOB = "bi_review_job"
REVIEW_REASON = "bi_review_reason"
REVIEW_APPROVE = "bi_review_approve"
REVIEW_REJECT = "bi_review_reject"
REVIEW_REVERT = "bi_review_revert"
REVIEW_CANCEL = "bi_review_cancel"
REVIEW_RETRY = "bi_review_retry"
REVIEW_DOWNLOAD_REJECTED = "bi_review_download_rejected"
REVIEW_CONFIRM_DELETES = "bi_review_confirm_deletes"
REVIEW_FIX_GRID = "bi_review_fix_grid"  # + job id and version: edits start afresh after each check
REVIEW_FIX_CHECK = "bi_review_fix_check"
REVIEW_FIX_ACCEPT_ALL = "bi_review_fix_accept_all"
UPLOAD_MODE = "bi_upload_mode"
UPLOAD_DUPLICATE_OK = "bi_upload_duplicate_ok"
REVIEW_DOWNLOAD_REJECTED_XLSX = "bi_review_download_rejected_xlsx"
REVIEW_DOWNLOAD_VALID = "bi_review_download_valid"
REVIEW_DOWNLOAD_VALID_XLSX = "bi_review_download_valid_xlsx"
REVIEW_RECHECK = "bi_review_recheck"
DATASETS_PICK = "bi_datasets_pick"
DATASETS_DRAFT_NAME = "bi_datasets_draft_name"
DATASETS_DRAFT_FILE = "bi_datasets_draft_file"
DATASETS_DRAFTS = "bi_datasets_drafts"  # drafts made this session: (name, file id) -> Draft or the error
FLASH = "bi_flash"  # messages from button callbacks, shown once on the next render

STATUS_COLOURS = {
    PENDING: "orange",
    VALIDATING: "blue",
    STAGED: "violet",
    FIXING: "blue",
    APPROVED: "blue",
    COMMITTING: "blue",
    COMMITTED: "green",
    FAILED: "red",
    REJECTED: "red",
    CANCELLED: "gray",
    REVERTED: "gray",
}
STATUS_ICONS = {
    PENDING: ":material/schedule:",
    VALIDATING: ":material/sync:",
    STAGED: ":material/rate_review:",
    FIXING: ":material/sync:",
    APPROVED: ":material/thumb_up:",
    COMMITTING: ":material/sync:",
    COMMITTED: ":material/check_circle:",
    FAILED: ":material/error:",
    REJECTED: ":material/block:",
    CANCELLED: ":material/cancel:",
    REVERTED: ":material/undo:",
}
# Cell colours for the status column (light tints with dark text: readable in both themes).
_CELL_STYLES = {
    "orange": "background-color: #ffe4c2; color: #7a3d00",
    "blue": "background-color: #d8e7ff; color: #0b3b8c",
    "violet": "background-color: #ebe1ff; color: #4b2593",
    "green": "background-color: #d3f5dd; color: #0f5c2a",
    "red": "background-color: #ffd9d9; color: #8a1111",
    "gray": "background-color: #e6e8eb; color: #3a3f45",
}
JOB_COLUMNS = (
    "id",
    "dataset",
    "brand",
    "mode",
    "status",
    "rows_total",
    "rows_valid",
    "rows_rejected",
    "created_by",
    "created_at",
    "error",
)

# ---------------------------------------------------------------- text from data

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


# ---------------------------------------------------------------- datasets in step with the lake


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


# ---------------------------------------------------------------- health banner


def health_banner() -> None:
    """Say loudly when Redis is down or no worker consumes the queue. Runs on every page."""
    _sweep_uploads()
    _health_fragment()


@st.cache_data(ttl=3600, show_spinner=False)
def _sweep_uploads() -> int:
    """At most hourly per dashboard process: previews abandoned for a day leave the uploads folder
    (the dashboard's host holds them; workers' reapers see them only when they share its disk)."""
    try:
        return len(workflow.sweep_abandoned_uploads())
    except Exception:  # noqa: BLE001 - housekeeping must never break a page (the registry may be down)
        return 0


@st.fragment(run_every=HEALTH_REFRESH_S)
def _health_fragment() -> None:
    if not session_alive():  # logged out in another tab, or idle too long: every page shows it within seconds
        st.rerun(scope="app")
    render_health(progress.health())


def render_health(health: progress.Health) -> None:
    queue = settings().queue
    if not health.redis_ok:
        st.error(
            f"**The job broker is unreachable**: {escape(masked(health.redis_error))}\n\n"
            "Uploads cannot be queued and approvals cannot be sent until it is back. "
            "Start Redis, a worker and this dashboard together with `make run` (or `bulkimport up`), "
            "or set `REDIS_URL` to a Redis that is running.",
            icon=":material/cloud_off:",
        )
        return
    if health.workers_on_queue:
        return
    user = st.session_state.get(USER)
    counts = registry.count_by_status(brands=users.brand_filter(user) if user else [])
    waiting = sum(counts.get(status, 0) for status in registry.IN_FLIGHT)
    if waiting or health.queue_depth:
        others = f" ({len(health.workers)} worker(s) run, on other queues)" if health.workers else ""
        st.warning(
            f"**{waiting} job(s) waiting, {health.queue_depth} message(s) queued, and no worker consumes the "
            f"queue `{queue}`**{others}. Nothing moves until one runs: start one with `bulkimport worker` "
            "(or `make run`).",
            icon=":material/warning:",
        )
    else:
        st.info(
            f"No worker is running on the queue `{queue}`. Uploads will wait in the queue until one starts "
            "(`bulkimport worker`, or `make run`).",
            icon=":material/info:",
        )


def nothing_consumes(job: registry.Job) -> str | None:
    """Right after sending work: what to say if no worker will pick it up (the banner catches up later)."""
    health = progress.health()
    if health.redis_ok and not health.workers_on_queue:
        return (
            f"Job {job.id} is queued, but **no worker consumes the queue `{settings().queue}`**: it stays "
            f"{job.status} until one starts (`bulkimport worker`, or `make run`)."
        )
    return None


# ---------------------------------------------------------------- jobs


def status_badge(status: str) -> None:
    st.badge(status, color=STATUS_COLOURS.get(status, "gray"), icon=STATUS_ICONS.get(status))


def _status_style(status: str) -> str:
    return _CELL_STYLES[STATUS_COLOURS.get(status, "gray")]


def review_url(job_id: str) -> str:
    """Relative link to the review page for a job (works under any base path)."""
    return f"review?{QUERY_JOB}={job_id}"


def job_label(job: registry.Job) -> str:
    return f"{job.id} · {job.status} · {job.dataset}/{job.brand} · {job.file_name} · {job.created_at[:19]}"


def job_table(jobs: list[registry.Job], *, key: str | None = None, links: bool = True) -> None:
    """Jobs as a table with a coloured status column and a link to each job's review."""
    if not jobs:
        st.caption("No jobs yet.")
        return
    frame = pd.DataFrame([j.to_dict() for j in jobs], columns=list(JOB_COLUMNS))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    frame["error"] = frame["error"].fillna("")
    counts = ("rows_total", "rows_valid", "rows_rejected")
    for column in counts:  # not counted yet (pending, validating): blank, not "None"
        frame[column] = [count_text(n) for n in frame[column]]
    config = {
        "id": st.column_config.TextColumn("job"),
        "mode": st.column_config.TextColumn("mode", help="upsert, append or replace: how the commit writes"),
        "status": st.column_config.TextColumn("status"),
        "rows_total": st.column_config.TextColumn("rows"),
        "rows_valid": st.column_config.TextColumn("valid"),
        "rows_rejected": st.column_config.TextColumn("rejected"),
        "error": st.column_config.TextColumn("error", width="medium"),
        "created_by": st.column_config.TextColumn("by"),
        "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    }
    if links:
        frame.insert(frame.columns.get_loc("error"), "review", [review_url(j.id) for j in jobs])
        config["review"] = st.column_config.LinkColumn("review", display_text="open")
    styled = frame.style.map(_status_style, subset=["status"])
    st.dataframe(styled, hide_index=True, column_config=config, key=key)


def watch_changes() -> None:
    """Subscribe this session to job status changes from now on. Call before sending work to a
    worker, so that its first change (a quick worker's "staged") waits for the page, not the next tick."""
    if STATUS_WATCH not in st.session_state:
        st.session_state[STATUS_WATCH] = progress.StatusWatch()


def follow_changes(busy: bool) -> None:
    """Call first in a self-refreshing part of a page. While a job moves (``busy``), wait for the next
    status change (or CHANGE_WAIT_S); while none does, hold no Redis subscription at all."""
    watch = st.session_state.get(STATUS_WATCH)
    if not busy:
        if watch is not None:
            watch.close()
            del st.session_state[STATUS_WATCH]
    elif watch is None:  # a job someone else sent: follow it from the next refresh on
        watch_changes()
    else:
        watch.wait(CHANGE_WAIT_S)


def any_in_flight(jobs: list[registry.Job]) -> bool:
    """Whether any of the jobs waits for or is being moved by a worker."""
    return any(j.status in registry.IN_FLIGHT for j in jobs)


def count_text(n) -> str:
    """A row count for a table cell: grouped digits, or blank while the job has not been counted."""
    return "" if n is None or pd.isna(n) else f"{int(n):,}"


def timeline(job_id: str) -> list[dict]:
    """The job's events for a table: when, who (workers by pid and host, not their raw ids), what, why."""
    return [
        {
            "at": e.at[:23],
            "who": registry.actor_label(e.actor),
            "change": f"{e.from_status or '-'} -> {e.to_status}",
            "note": e.note or "",
        }
        for e in registry.events(job_id)
    ]


def _size(n: float | None) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def job_progress(job: registry.Job) -> None:
    """A progress bar from what the worker last published for the job."""
    values = progress.read(job.id)
    if not values:
        st.progress(0.0, text=f"{job.id}: {job.status}, no progress reported yet")
        return
    total = values.get("bytes_total") or job.file_bytes or 0
    done = values.get("bytes_read") or 0
    fraction = min(1.0, done / total) if total else 0.0
    rows = values.get("rows_read")
    counts = ""
    if rows is not None:
        counts = (
            f", {rows:,} rows read ({values.get('rows_valid') or 0:,} valid, "
            f"{values.get('rows_rejected') or 0:,} rejected)"
        )
    size = f", {_size(done)} of {_size(total)}" if total else ""
    st.progress(fraction, text=escape(f"{job.id}: {values.get('phase', job.status)}{counts}{size}"))


# ---------------------------------------------------------------- login


def oidc_configured() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section: log in through st.login, not passwords."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file (or an unreadable one) means no OIDC
        return False


def current_user() -> users.User | None:
    """The logged-in user, checked on every run: a session ended by a logout (in any tab), an idle
    timeout or the user's removal from the users file is logged out at once."""
    if oidc_configured():
        return _oidc_user()
    session_id = st.session_state.get(SESSION) or sessions.session_of_cookie(st.context.cookies.get(sessions.COOKIE))
    user = sessions.user_of(session_id)
    if user is None:
        if session_id or st.session_state.get(USER):
            _forget_session()
        return None
    if getattr(st.session_state.get(USER), "name", user.name) != user.name:
        _forget_session()  # another person logged in on this browser: nothing of the last one stays
    st.session_state[SESSION] = session_id
    st.session_state[USER] = user
    return user


def session_alive() -> bool:
    """Is this browser's login session still live (not a click: it does not count as activity)?"""
    if oidc_configured():
        return True
    return sessions.user_of(st.session_state.get(SESSION), touch=False) is not None


def require_user() -> users.User:
    """The logged-in user; a view run without one (app.py logs in first) stops here."""
    user = st.session_state.get(USER)
    if user is None:
        st.error("Log in first.")
        st.stop()
    return user


def _oidc_user() -> users.User | None:
    """Map the identity from the OIDC provider to a user of the users file.

    ``[oidc_users]`` in secrets.toml maps e-mail addresses to user names; without
    an entry, the user whose name is the e-mail address itself. Only an address
    the provider says it verified (``email_verified`` true) counts.
    """
    if not st.user.is_logged_in:
        st.session_state.pop(USER, None)
        return None
    if st.user.get("email_verified") is not True:
        return None
    email = str(st.user.get("email") or "")
    try:
        names = dict(st.secrets.get("oidc_users", {}))
    except Exception:  # noqa: BLE001
        names = {}
    try:
        user = users.get(names.get(email, email))
    except NotAllowed:
        _forget_session()
        return None
    if getattr(st.session_state.get(USER), "name", None) != user.name:
        _forget_session()  # another identity in the same browser session: nothing of the last one stays
    st.session_state[USER] = user
    return user


def _here() -> str:
    """This page's path and query, for the login page to send the user back to."""
    path = urllib.parse.urlsplit(st.context.url or "").path or "/"
    query = urllib.parse.urlencode(st.query_params.to_dict())
    return path + (f"?{query}" if query else "")


def login_form() -> None:
    """What a browser without a live session sees: the way to the login page (or the OIDC provider)."""
    st.title("bulkimport")
    if oidc_configured():
        _oidc_login()
        return
    if not web.serving():
        st.error(
            "Log in through the dashboard's server: start it with `bulkimport up` (or `make run`), which "
            "serves this app behind its login page (`streamlit run serve.py`)."
        )
        return
    st.info(
        "You are not logged in: you logged out, your session was idle for more than "
        f"{settings().session_idle_minutes} minutes, or it ended.",
        icon=":material/lock:",
    )
    st.link_button(
        "Log in", "login?" + urllib.parse.urlencode({"next": _here()}), type="primary", icon=":material/login:"
    )


def _oidc_login() -> None:
    if st.user.is_logged_in:  # signed in at the provider, but no bulkimport user matches
        email = str(st.user.get("email") or st.user.get("name") or "this account")
        if st.user.get("email_verified") is not True:
            st.error(
                f"You are signed in as **{escape(email)}**, but your identity provider does not say this "
                "address is verified, so it cannot be matched to a bulkimport user."
            )
        else:
            st.error(
                f"You are signed in as **{escape(email)}**, but no bulkimport user matches it. Ask an admin to add "
                f"one (`bulkimport users add {escape(email)} --role analyst --brands ...`) or to map the address in "
                "`[oidc_users]` of `.streamlit/secrets.toml`."
            )
        st.button("Log out", key=LOGOUT, on_click=st.logout, icon=":material/logout:")
        return
    auth = st.secrets["auth"]
    providers = [name for name, value in auth.items() if isinstance(value, Mapping)]
    for provider in providers or [None]:
        label = f"Log in with {provider}" if provider else "Log in"
        st.button(
            label,
            type="primary",
            key=f"{LOGIN_SUBMIT}_{provider or 'oidc'}",
            on_click=st.login,
            args=(provider,) if provider else (),
            icon=":material/login:",
        )


def logout() -> None:
    """End the session (every tab of this browser) and forget what the user left half done."""
    sessions.end(st.session_state.get(SESSION))
    _forget_session()
    if oidc_configured():
        st.logout()


def _forget_session() -> None:
    stored = st.session_state.pop(UPLOAD_STORED, None)
    if stored:
        workflow.discard_upload(stored[1])
    for key in (
        USER,
        SESSION,
        LAST_UPLOAD,
        UPLOAD_SUBMITTED,
        UPLOAD_PREVIEWS,
        UPLOAD_MAPPING_BASE,
        UPLOAD_BRAND,
        JOBS_BRAND,
        REVIEW_JOB,
        REVIEW_REASON,
    ):
        st.session_state.pop(key, None)


# A plain form that posts to the login server's /logout: it ends the session and clears the cookie, in this tab.
_LOGOUT_FORM = (
    '<form method="post" action="logout" style="margin:0">'
    '<button type="submit" style="padding:.35rem .9rem;border:1px solid rgba(49,51,63,.2);border-radius:.5rem;'
    'background:transparent;color:inherit;font:inherit;cursor:pointer">Log out</button></form>'
)


def user_sidebar(user: users.User) -> None:
    """Who is logged in, what they may do, and the way out."""
    with st.sidebar:
        brands = "all brands" if user.sees_all else ", ".join(user.brands)
        st.markdown(f"**{escape(user.name)}** · {escape(user.role)}  \n{escape(brands)}")
        if oidc_configured() or not web.serving():
            st.button("Log out", key=LOGOUT, on_click=logout, icon=":material/logout:")
        else:
            st.html(_LOGOUT_FORM)


def may_enter_any_brand(user: users.User) -> bool:
    return user.sees_all


# ---------------------------------------------------------------- upload preview


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


# ---------------------------------------------------------------- review helpers


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


# ---------------------------------------------------------------- messages


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
