"""Who sees which jobs: the brand rule applied to the registry, for every face (dashboard, CLI, API).

Light on purpose (the registry and the users file only), so `bulkimport status` and `jobs` stay quick.
"""

from __future__ import annotations

from bulkimport import registry, users
from bulkimport.errors import JobNotFound


def acting(user: users.User) -> users.User:
    """The user as the users file says now: a removed user acts no more, a changed role counts at once."""
    if not isinstance(user, users.User):
        raise TypeError(f"expected the authenticated users.User who acts, not {type(user).__name__}")
    return users.get(user.name)


def visible_jobs(user: users.User, **filters) -> list[registry.Job]:
    """Jobs of the brands ``user`` may see, newest first."""
    return registry.list_jobs(**filters, brands=users.brand_filter(acting(user)))


def visible_job(job_id: str, user: users.User) -> registry.Job:
    """The job if ``user`` may see it; otherwise the same JobNotFound whether it exists or not,
    so other brands' job ids cannot be probed."""
    try:
        job = registry.get(job_id)
    except JobNotFound:
        job = None
    if job is None or not user.sees(job.brand):
        raise JobNotFound(f"job {job_id!r}: not found or not yours; `bulkimport jobs` lists yours")
    return job


def visible_events(job_id: str, user: users.User) -> list[registry.Event]:
    """The timeline of a job ``user`` may see."""
    return registry.events(visible_job(job_id, acting(user)).id)


__all__ = ["acting", "visible_events", "visible_job", "visible_jobs"]
