"""Who is logged in: a session from bulkimport.web's login, or OIDC; the login form and logout."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

import streamlit as st

from bulkimport import sessions, users, web, workflow
from bulkimport.config import settings
from bulkimport.errors import NotAllowed
from bulkimport.ui.keys import (
    JOBS_BRAND,
    LAST_UPLOAD,
    LOGIN_SUBMIT,
    LOGOUT,
    REVIEW_JOB,
    REVIEW_REASON,
    SESSION,
    UPLOAD_BRAND,
    UPLOAD_MAPPING_BASE,
    UPLOAD_PREVIEWS,
    UPLOAD_STORED,
    UPLOAD_SUBMITTED,
    USER,
)
from bulkimport.ui.text import escape


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
