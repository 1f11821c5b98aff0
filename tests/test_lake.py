"""The lake under concurrent writers: every write lands, none is lost to `database is locked`."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from bulkimport import lake
from bulkimport.errors import LakeBusy

# The catalog in SQLite, and in PostgreSQL too with BULKIMPORT_SCALE_OUT=1 (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("lake_backend")


class _Child:
    """A writer process with the multiprocessing.Process surface the test uses."""

    def __init__(self, args):
        self.args, self.process = args, None

    def start(self):
        self.process = subprocess.Popen(self.args, cwd=Path(__file__).resolve().parent.parent, env=dict(os.environ))

    def join(self, timeout):
        self.process.wait(timeout)

    @property
    def exitcode(self):
        return self.process.returncode


def _writer(home: str, writer: int, rounds: int) -> None:
    os.environ["BULKIMPORT_HOME"] = home
    with lake.session() as con:
        for i in range(rounds):
            lake.write(con, lambda c, i=i: c.execute("INSERT INTO audit.probe VALUES (?, ?)", [writer, i]))


def test_concurrent_writers_from_several_processes_all_commit(home):
    with lake.session() as con:
        lake.write(
            con,
            lambda c: (
                c.execute("CREATE SCHEMA IF NOT EXISTS audit"),
                c.execute("CREATE TABLE IF NOT EXISTS audit.probe (writer INT, i INT)"),
            ),
        )
    # Plain interpreters, not multiprocessing's spawn: after an AppTest ran in this process,
    # spawn would re-run the dashboard script that AppTest left as __main__ in each child.
    code = "import sys; from tests.test_lake import _writer; _writer(sys.argv[1], int(sys.argv[2]), 15)"
    workers = [_Child([sys.executable, "-c", code, str(home), str(w)]) for w in range(6)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    with lake.session() as con:
        assert con.sql("SELECT count(*), count(DISTINCT (writer, i)) FROM audit.probe").fetchone() == (90, 90)


def test_a_write_that_stays_busy_gives_up_after_the_time_budget_with_a_clear_error(home, monkeypatch):
    calls, clock = [], [1000.0]

    def always_locked(con):
        calls.append(1)
        raise duckdb.IOException("database is locked")

    class FakeTime:  # no real waiting: sleeping moves this clock on
        monotonic = staticmethod(lambda: clock[0])
        sleep = staticmethod(lambda s: clock.__setitem__(0, clock[0] + s))

    monkeypatch.setenv("BULKIMPORT_LAKE_BUSY_SECONDS", "30")
    with lake.session() as con:
        monkeypatch.setattr(lake, "time", FakeTime)
        with pytest.raises(LakeBusy, match=r"stayed busy for 30 s \(\d+ attempts\): .*database is locked"):
            lake.write(con, always_locked)
    assert 15 < len(calls) < 60  # backoff doubles from 50 ms up to 2 s, with jitter
    assert clock[0] - 1000 <= 30


def test_other_errors_are_not_retried(home):
    calls = []

    def broken(con):
        calls.append(1)
        con.execute("SELECT * FROM no_such_table")

    with lake.session() as con, pytest.raises(duckdb.CatalogException):
        lake.write(con, broken)
    assert len(calls) == 1


def test_postgres_conflicts_are_retryable():
    assert lake.is_retryable(duckdb.TransactionException("could not serialize access due to concurrent update"))
    assert lake.is_retryable(duckdb.Error('duplicate key value violates unique constraint "ducklake_snapshot_pkey"'))
    assert not lake.is_retryable(duckdb.CatalogException("Table with name nope does not exist"))


def test_lake_data_and_uploads_in_s3(home, s3_lake, tmp_path):
    with lake.session() as con:
        lake.write(
            con,
            lambda c: (
                c.execute("CREATE SCHEMA IF NOT EXISTS audit"),
                c.execute("CREATE TABLE audit.probe AS SELECT range AS i FROM range(1000)"),
            ),
        )
    with lake.session() as con:
        assert con.sql("SELECT count(*), sum(i) FROM audit.probe").fetchone() == (1000, 499500)
        files = con.sql("SELECT data_file FROM ducklake_list_files('lake', 'probe', schema => 'audit')").fetchall()
    assert files and all(f.startswith(s3_lake + "/") for (f,) in files)
    # Uploads go next to the data, byte for byte, and come back as a local file for the reader.
    raw = b'sku,name\r\nAB-1,"caf\xe9 \x00\xff"\n' * 1000
    local = home / "uploads" / "j1" / "odd name's.csv"
    local.parent.mkdir(parents=True)
    local.write_bytes(raw)
    url = lake.keep_upload(local, "j1")
    assert url == f"{s3_lake}/uploads/j1/odd name's.csv" and not local.exists()
    with lake.local_copy(url) as path:
        assert path.read_bytes() == raw
        folder = path.parent
    assert not folder.exists()


def test_a_local_lake_keeps_uploads_where_they_are(home, tmp_path):
    local = tmp_path / "a.csv"
    local.write_text("x\n")
    assert lake.keep_upload(local, "j1") == str(local)
    with lake.local_copy(str(local)) as path:
        assert path == local


def test_two_workers_creating_a_new_catalog_at_once_is_retried_not_an_error():
    race = duckdb.CatalogException(
        'Failed to initialize DuckLake: ... CREATE TABLE "public"."ducklake_metadata" ...: '
        'ERROR: relation "ducklake_metadata" already exists'
    )
    assert lake.is_retryable(race)
    assert not lake.is_retryable(duckdb.CatalogException('Table with name "x" already exists!'))
