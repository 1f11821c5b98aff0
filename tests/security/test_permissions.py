"""Item 9: BULKIMPORT_HOME was 0755 and its files 0644: another local account read a brand's upload."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from bulkimport import users
from tests.conftest import EXAMPLE, PASSWORD, Workers, run_cli

pytestmark = pytest.mark.e2e


def test_what_bulkimport_writes_under_its_home_only_its_owner_can_read(redis_url, monkeypatch):
    parent = Path(tempfile.mkdtemp(prefix="bulkimport-perm-", dir="/tmp"))
    parent.chmod(0o755)  # a folder anyone may enter, like a home directory
    home = parent / "home"
    monkeypatch.setenv("BULKIMPORT_HOME", str(home))
    users.add("ana", "analyst", ["acme"], PASSWORD)
    token = users.create_token("ana")
    before = os.umask(0o022)  # the usual umask: every bulkimport process must tighten it itself
    pool = Workers(parent)
    try:
        pool.start()
        done = run_cli(
            "submit", str(EXAMPLE), "--dataset", "products", "--brand", "acme", "--wait", "--json", env_token=token
        )
        assert json.loads(done.stdout)["status"] == "staged"
    finally:
        pool.stop()
        os.umask(before)

    loose = []
    for folder, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            mode = stat.S_IMODE(os.lstat(Path(folder, name)).st_mode)
            if mode & 0o077:
                loose.append(f"{Path(folder, name).relative_to(home)} {mode:o}")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not loose, loose
    [upload] = [p for p in (home / "uploads").rglob("*") if p.is_file()]
    if shutil.which("runuser") and os.geteuid() == 0:
        other = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(upload)], capture_output=True, text=True)
        assert other.returncode != 0 and "Permission denied" in other.stderr, "another account reads nothing"
    shutil.rmtree(parent, ignore_errors=True)
