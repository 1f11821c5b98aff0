"""Names and values from users and files reach SQL text only quoted, whatever they hold."""

import duckdb
import pytest

from bulkimport.sql import ident, idents, literal

HOSTILE = ["plain", 'with "quotes"', "it's", 'x" ; DROP TABLE t; --', "Größe €", "名前", "tab\tand\nnewline", ""]


@pytest.mark.parametrize("name", [n for n in HOSTILE if n])
def test_any_name_round_trips_as_an_identifier(name):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE {ident(name)} ({ident(name)} INTEGER)")
    con.execute(f"INSERT INTO {ident(name)} VALUES (1)")
    assert con.execute(f"SELECT {ident(name)} FROM {ident(name)}").description[0][0] == name
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 1  # nothing dropped, nothing added


@pytest.mark.parametrize("value", [*HOSTILE, "back\\slash", 42, -1.5, None, True])
def test_any_value_round_trips_as_a_literal(value):
    assert duckdb.sql(f"SELECT {literal(value)}").fetchone()[0] == value


def test_a_nul_is_refused_rather_than_cutting_the_statement_short():
    with pytest.raises(ValueError, match="NUL"):
        ident("a\x00b")
    with pytest.raises(ValueError, match="NUL"):
        literal("a\x00' OR 1=1 --")


def test_idents_joins_quoted_names():
    assert idents(["a", 'b"c']) == '"a", "b""c"'
