"""Sending work to a worker, by actor name (submit, approve, reject, revert, cancel, retry, fix), waiting, fixes."""

from __future__ import annotations

import pandas as pd

from bulkimport import fixing, registry, workflow
from bulkimport.api.session import _who
from bulkimport.registry import FINAL, STAGED

# ---------------------------------------------------------------- sending work (to a worker, by actor name)


def submit(
    source,
    *,
    dataset: str,
    brand: str,
    file_name: str | None = None,
    options: dict | None = None,
    mapping: dict[str, str] | None = None,
    mode: str = "upsert",
    allow_duplicate: bool = False,
) -> registry.Job:
    """Store a file and queue its validation, as the person logged in (``bi.login``).

    ``mapping`` (file column -> dataset column) is applied exactly as given; without
    it the worker matches the header by names and aliases. ``mode``: ``upsert``
    (insert and update), ``append`` (insert only; keys already in production are
    rejected as conflicts) or ``replace`` (also delete the brand's rows not in the
    file). The same file already staged, approved or committed for the dataset and
    brand raises DuplicateFile unless ``allow_duplicate``; an empty, binary or
    unreadable file raises FileRefused; in both cases no job is created.

    >>> job = bi.submit("prices.csv", dataset="products", brand="acme")
    >>> job = bi.submit("catalogue.csv", dataset="products", brand="acme", mode="replace")
    """
    return workflow.submit(
        source,
        dataset=dataset,
        brand=brand,
        user=_who(),
        file_name=file_name,
        options=options,
        mapping=mapping,
        mode=mode,
        allow_duplicate=allow_duplicate,
    )


def approve(job_id: str, confirm_deletes: bool = False) -> registry.Job:
    """Approve a staged job (an operator or admin of its brand who neither uploaded it nor fixed its rows)
    and queue its commit. A replace that deletes more than BULKIMPORT_REPLACE_GUARD_PERCENT of the brand's
    rows (or has rejected lines) raises ConfirmationNeeded unless ``confirm_deletes``.

    >>> bi.login(approver_token); bi.approve(job.id)
    """
    return workflow.approve(job_id, user=_who(), confirm_deletes=confirm_deletes)


def reject(job_id: str, reason: str) -> registry.Job:
    """Reject a staged job with a reason: nothing reaches production.

    >>> bi.reject(job.id, "wrong price list")
    """
    return workflow.reject(job_id, user=_who(), reason=reason)


def revert(job_id: str) -> registry.Job:
    """Queue the revert of a committed job: rows it inserted go, rows it updated get their values back."""
    return workflow.revert(job_id, user=_who())


def cancel(job_id: str) -> registry.Job:
    """Cancel a pending or validating job (its uploader, or an operator of its brand)."""
    return workflow.cancel(job_id, user=_who())


def retry(job_id: str) -> registry.Job:
    """Run a failed job again from where it failed: same file, options and mapping."""
    return workflow.retry(job_id, user=_who())


def wait(job_id: str, until=(STAGED, *FINAL), timeout: float = 600, poll: float = 1.0, on_change=None) -> registry.Job:
    """Block until a job you may see reaches one of ``until`` (staged or final by default).

    >>> bi.wait(job.id, until=["committed", "failed"], timeout=300, on_change=lambda j: print(j.status))
    """
    workflow.visible_job(job_id, _who())
    return workflow.wait(job_id, until=until, timeout=timeout, poll=poll, on_change=on_change)


# ---------------------------------------------------------------- fixing rejected rows


def fix(job_id: str, rows=None, *, accept_suggestions: bool | list[int] = False) -> registry.Job:
    """Fix rejected rows of a staged job in place; a worker checks them again with the dataset's schema.

    ``rows`` gives new values by line (``{6: {"price": "3.00"}}``, or records / a DataFrame with a
    ``line`` column); cells not given keep what the row had. ``accept_suggestions=True`` (or a list
    of lines) takes the repair suggestions (``bi.suggestions``). Rows that pass join the staged rows,
    the others stay rejected with their new reasons; ``bi.fixes`` lists every changed cell. The job is
    ``fixing`` until then: ``bi.wait(job_id)``.

    >>> bi.fix("3f2a9c1b7d4e", {6: {"price": "3.00"}, 8: {"stock": "10"}})
    >>> bi.wait("3f2a9c1b7d4e").rows_rejected
    7
    """
    return fixing.fix(job_id, rows, user=_who(), accept_suggestions=accept_suggestions)


def suggestions(job_id: str) -> pd.DataFrame:
    """Repair suggestions for rejected rows whose cells broke (one too many or too few, a stray quote).

    One row per line with exactly one repair that passes the schema: ``line``, ``change`` (what it
    does), ``cells_before`` and ``cells_after`` (the file's cells). Accept them with
    ``bi.fix(job_id, accept_suggestions=True)``; they are never applied on their own.

    >>> bi.suggestions("3f2a9c1b7d4e")[["line", "change"]]
    """
    return fixing.suggestions(job_id, _who())


def fixes(job_id: str) -> pd.DataFrame:
    """Every cell a fix changed: ``fixed_at, fixed_by, line, column, before, after, suggestion, outcome``.

    >>> bi.fixes("3f2a9c1b7d4e")
    """
    return fixing.history(job_id, _who())
