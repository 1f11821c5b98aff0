"""One exception hierarchy; every message says what to do next."""


class BulkImportError(Exception):
    """Base of every error this package raises on purpose."""


class UnknownDataset(BulkImportError):
    pass


class JobNotFound(BulkImportError):
    pass


class InvalidTransition(BulkImportError):
    """The job is not in a state that allows the requested action."""


class DispatchError(BulkImportError):
    """A message could not be handed to the broker (Redis down, say).

    ``job_id`` names the job the message was for, once the sender knows it.
    """

    job_id: str | None = None


class FileRefused(BulkImportError):
    """Nothing in the file can be imported: not text, empty, or no matching header."""


class LakeBusy(BulkImportError):
    """A lake write kept conflicting with other writers after every retry."""


class UploadTooLarge(BulkImportError):
    """An upload over BULKIMPORT_UPLOAD_MAX_MB; nothing of it is kept."""


class DuplicateFile(BulkImportError):
    """The same file (by content) is already staged, approved or committed for this dataset and brand."""

    def __init__(self, message: str, job_id: str):
        super().__init__(message)
        self.job_id = job_id


class ConfirmationNeeded(BulkImportError):
    """The action is allowed but drastic (a replace deleting many rows): the user must confirm it."""


class DatasetInvalid(BulkImportError):
    """A dataset module does not load, or defines a dataset that cannot work."""


class SchemaChangePending(BulkImportError):
    """A dataset changed in a way the lake's tables cannot follow on their own: a person must migrate."""


class MigrationRefused(BulkImportError):
    """A migration that would change the lake's rows (values that do not fit, duplicate keys), or a stale plan."""


class DatasetChanged(BulkImportError):
    """The dataset's definition changed since the job was validated: it must be checked again."""


class ConfigError(BulkImportError):
    """A setting (an environment variable) has a value it does not accept; the message names each one."""
