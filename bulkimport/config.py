"""Settings: ``settings()`` is the one way in; the model, every variable documented, is in settings_model.py.

``settings()`` re-reads the environment whenever one of its variables changes (tests and tools set
them), and returns the same checked object otherwise. A bad value raises ConfigError, naming it.
``python -m bulkimport.config --markdown`` prints docs/configuration.md.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkimport.settings_model import Settings


# scheme://userinfo@ : the userinfo (a user name, a password, an access key) is what must never be shown.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")


def masked(text: object) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``: fit to show, log or store.

    >>> masked("redis://:s3cret@127.0.0.1:6399/0 is unreachable")
    'redis://***@127.0.0.1:6399/0 is unreachable'
    """
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}***@", str(text))


class MaskSecrets(logging.Filter):
    """A log handler's filter: every record (its traceback too) with URLs' userinfo masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = masked(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = masked(logging.Formatter().formatException(record.exc_info))
        return True


def mask_secrets_in_logs() -> None:
    """Put ``MaskSecrets`` on every handler of the root logger (a worker's, the CLI's)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets())


def is_postgres(location: Path | str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a file path."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def is_s3(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def settings() -> Settings:
    """The checked settings; ConfigError (naming each bad variable) when one has a value it does not accept."""
    # Imported here so that a command that needs no setting does not load pydantic.
    from bulkimport.settings_model import VARIABLES

    return _read(tuple(map(os.environ.get, VARIABLES)))


@functools.lru_cache(maxsize=1)
def _read(environment: tuple[str | None, ...]) -> Settings:
    """Build the settings once per state of their variables (``environment`` is only the cache key)."""
    from bulkimport.settings_model import load

    return load()


def reload() -> Settings:
    """Build the settings again though no variable changed: a relative BULKIMPORT_HOME after a change of folder."""
    _read.cache_clear()
    return settings()


def redis_password_file() -> Path:
    """The password of the Redis that `bulkimport up` starts (0600 under BULKIMPORT_HOME)."""
    return settings().redis_password_file


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m bulkimport.config --markdown   (prints docs/configuration.md)")
    from bulkimport.settings_model import markdown

    print(markdown(), end="")
