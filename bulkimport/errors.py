"""One exception hierarchy; every message says what to do next.

Every error is either terminal (the file, the data or the request is wrong: retrying cannot
help, so a job fails at once) or transient (the lake, the broker or the server is busy: the
same call may well succeed later, so a worker retries it). A plain BulkImportError counts as
terminal. Errors about one job carry its id.
"""

import datetime as dt


class BulkImportError(Exception):
    """Base of every error this package raises on purpose.

    ``job_id`` names the job the error is about, if any; the message then names it too.
    ``reason`` is the message without the job's id, for the record on the job itself.
    """

    job_id: str | None = None

    def __init__(self, message: str = "", job_id: str | None = None):
        self.reason = message
        if job_id is not None:
            self.job_id = job_id
        super().__init__(f"job {job_id}: {message}" if job_id and job_id not in message else message)


class TerminalError(BulkImportError):
    """The input is wrong (file, data, dataset or request): fail now, never retry."""


class TransientError(BulkImportError):
    """Something shared is busy or away (lake, broker, server): the same call may succeed later."""


class UnknownDataset(TerminalError):
    pass


class JobNotFound(TerminalError):
    pass


class InvalidTransition(TerminalError):
    """The job is not in a state that allows the requested action."""


class NotAllowed(TerminalError):
    """The user may not do this (role, brand or the four-eyes rule)."""


class NotLoggedIn(TerminalError):
    """Nobody proved who acts: no token, and no terminal to ask for a password on."""


class DispatchError(TransientError):
    """A message could not be handed to the broker (Redis down, say)."""


class FileRefused(TerminalError):
    """Nothing in the file can be imported: not text, empty, or no matching header."""


class LakeBusy(TransientError):
    """A lake write kept conflicting with other writers after every retry."""


class UploadTooLarge(TerminalError):
    """An upload over BULKIMPORT_UPLOAD_MAX_MB; nothing of it is kept."""


class DuplicateFile(TerminalError):
    """The same file (by content) is already staged, approved or committed for this dataset and brand.

    ``job_id`` is that earlier job.
    """

    def __init__(self, message: str, job_id: str):
        super().__init__(message, job_id)


class ConfirmationNeeded(TerminalError):
    """The action is allowed but drastic (a replace deleting many rows): the user must confirm it."""


class DatasetInvalid(TerminalError):
    """A dataset module does not load, or defines a dataset that cannot work."""


class SchemaChangePending(TerminalError):
    """A dataset changed in a way the lake's tables cannot follow on their own: a person must migrate."""


class MigrationRefused(TerminalError):
    """A migration that would change the lake's rows (values that do not fit, duplicate keys), or a stale plan."""


class DatasetChanged(TerminalError):
    """The dataset's definition changed since the job was validated: it must be checked again."""


class ApprovalOutdated(TerminalError):
    """What was approved is not what would be committed: review the new diff and approve again."""


class RevertRefused(TerminalError):
    """A later import changed rows this job wrote; reverting would overwrite its work."""


class Throttled(TransientError):
    """Too many failed logins: no password is checked until ``retry_at``."""

    def __init__(self, retry_at: dt.datetime):
        self.retry_at = retry_at
        self.seconds = max(1, round((retry_at - dt.datetime.now(dt.UTC)).total_seconds()))
        super().__init__(
            f"Too many failed logins for this user or from this address. Try again in {self.seconds} s "
            f"(at {retry_at:%H:%M:%S} UTC)."
        )


class LoginsBusy(TransientError):
    """Too many password checks at once in this process."""


class ConfigError(TerminalError):
    """A setting (an environment variable) has a value it does not accept; the message names each one."""
