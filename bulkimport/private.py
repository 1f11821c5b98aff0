"""Files only their owner may read: BULKIMPORT_HOME is 0700, what is written under it 0600.

Every process that writes there (the CLI and what `bulkimport up` starts, workers, the
dashboard, a notebook once it logs in) calls ``secure_process`` first, so files made by
libraries (SQLite, DuckDB, Redis's AOF) are private too, not only the ones written here.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

from bulkimport.config import settings

PRIVATE_UMASK = 0o077


def secure_process() -> None:
    """Files and folders this process creates from now on are its owner's only; the home is made 0700."""
    os.umask(PRIVATE_UMASK)
    ensure_private_dir(settings().home)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700, or take group and other rights away from it if this account owns it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & 0o700)
    except OSError:
        pass  # a folder we cannot change (a shared volume): its owner decides
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as 0600, atomically: readers see the old or the new file, never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_or_create_secret(path: Path, make) -> str:
    """The secret kept in ``path`` (0600); made with ``make()`` and written there the first time."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = make()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs, once written
        for _ in range(100):
            if value := path.read_text().strip():
                return value
            time.sleep(0.02)
        raise
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value
