"""Settings: every bad value stops a process at start, naming the variable; the docs are the model's."""

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bulkimport import cli, config, users
from bulkimport.errors import BulkImportError, ConfigError
from bulkimport.settings_model import VARIABLES, Settings, default, markdown, variable
from tests.conftest import REPO, TOKENS


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No setting from the machine's environment; BULKIMPORT_HOME in the test's folder."""
    for name in VARIABLES:
        if name != "HOME":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BULKIMPORT_HOME", str(tmp_path / "home"))
    return monkeypatch


BAD = [
    pytest.param("BULKIMPORT_CHUNK_ROWS", "0", "a whole number >= 1", id="zero"),
    pytest.param("BULKIMPORT_WORKER_THREADS", "-2", "a whole number >= 1", id="negative"),
    pytest.param("BULKIMPORT_MAX_ATTEMPTS", "three", "a whole number >= 1", id="not-a-number"),
    pytest.param("BULKIMPORT_UPLOAD_MAX_MB", "1.5", "a whole number >= 1", id="not-whole"),
    pytest.param("BULKIMPORT_DASHBOARD_PORT", "70000", "a whole number from 1 to 65535", id="port-out-of-range"),
    pytest.param("BULKIMPORT_REPLACE_GUARD_PERCENT", "150", "a whole number from 0 to 100", id="percent-over-100"),
    pytest.param("BULKIMPORT_FAST_PATH", "maybe", "1 or 0", id="bad-bool"),
    pytest.param("BULKIMPORT_DUCKDB_MEMORY", "lots", "a size such as 256MB", id="bad-size"),
    pytest.param("BULKIMPORT_QUEUE", "my queue", "letters, digits", id="bad-queue-name"),
    pytest.param("BULKIMPORT_DB_URL", "mysql://db/jobs", "postgresql://", id="registry-not-postgres"),
    pytest.param("BULKIMPORT_LAKE_CATALOG", "sqlite://x", "postgresql://", id="catalog-not-postgres"),
    pytest.param("BULKIMPORT_LAKE_DATA", "gs://bucket/lake", "s3://bucket/prefix", id="data-not-s3"),
    pytest.param("REDIS_URL", "http://127.0.0.1:6379", "redis://", id="not-a-redis-url"),
]


@pytest.mark.parametrize(("name", "value", "accepts"), BAD)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(env, name, value, accepts):
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        config.settings()
    assert str(caught.value).startswith(f"{name} must be ")
    assert accepts in str(caught.value)
    assert repr(value) in str(caught.value)


def test_zero_chunk_rows_gets_the_exact_message(env):
    env.setenv("BULKIMPORT_CHUNK_ROWS", "0")
    with pytest.raises(ConfigError, match=re.escape("BULKIMPORT_CHUNK_ROWS must be a whole number >= 1, got '0'")):
        config.settings()


def test_a_folder_setting_that_is_a_file_is_refused(env, tmp_path):
    a_file = tmp_path / "home-file"
    a_file.write_text("")
    env.setenv("BULKIMPORT_HOME", str(a_file))
    with pytest.raises(ConfigError, match="^BULKIMPORT_HOME must be a folder"):
        config.settings()


def test_every_bad_variable_is_named_at_once(env):
    env.setenv("BULKIMPORT_CHUNK_ROWS", "0")
    env.setenv("BULKIMPORT_SESSION_HOURS", "soon")
    with pytest.raises(ConfigError) as caught:
        config.settings()
    assert [line.split()[0] for line in str(caught.value).splitlines()] == [
        "BULKIMPORT_CHUNK_ROWS",
        "BULKIMPORT_SESSION_HOURS",
    ]


def test_a_password_in_a_bad_url_is_not_repeated(env):
    env.setenv("REDIS_URL", "http://:s3cret@10.0.0.1/0")
    with pytest.raises(ConfigError) as caught:
        config.settings()
    assert "s3cret" not in str(caught.value)


def test_library_code_raises_config_error_not_system_exit(env):
    env.setenv("BULKIMPORT_CHUNK_ROWS", "0")
    with pytest.raises(ConfigError) as caught:
        users.users_file()  # any library call that needs a setting
    assert isinstance(caught.value, BulkImportError)
    assert not isinstance(caught.value, SystemExit)


def test_the_command_line_stops_with_the_message_and_exit_2(env, capsys):
    env.setenv("BULKIMPORT_MAX_ATTEMPTS", "0")
    assert cli.main(["jobs"]) == 2
    assert capsys.readouterr().err == "error: BULKIMPORT_MAX_ATTEMPTS must be a whole number >= 1, got '0'\n"


def test_the_worker_stops_with_the_message_and_exit_2(env):
    env.setenv("BULKIMPORT_CHUNK_ROWS", "0")
    result = subprocess.run(
        [sys.executable, "-m", "bulkimport.worker"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == "error: BULKIMPORT_CHUNK_ROWS must be a whole number >= 1, got '0'\n"


def test_defaults_and_empty_values(env, tmp_path):
    env.setenv("BULKIMPORT_CHUNK_ROWS", "")  # empty counts as unset
    s = config.settings()
    assert (s.chunk_rows, s.max_attempts, s.queue, s.fast_path, s.replace_guard_share) == (
        50_000,
        3,
        "bulkimport",
        True,
        0.2,
    )
    assert s.home == (tmp_path / "home").resolve()
    assert s.registry_path == s.home / "jobs.sqlite"
    assert s.lake_data == s.home / "lake" / "data"
    assert s.redis_url == "redis://127.0.0.1:6399/0" and not s.redis_url_from_env


def test_urls_stay_text_and_the_region_falls_back_to_aws_region(env):
    env.setenv("BULKIMPORT_DB_URL", "postgresql://u@db/jobs")
    env.setenv("BULKIMPORT_LAKE_DATA", "s3://bucket/lake")
    env.setenv("AWS_REGION", "eu-west-3")
    env.setenv("BULKIMPORT_FAST_PATH", "0")
    s = config.settings()
    assert (s.registry_path, s.lake_data, s.s3_region, s.fast_path) == (
        "postgresql://u@db/jobs",
        "s3://bucket/lake",
        "eu-west-3",
        False,
    )
    env.setenv("BULKIMPORT_S3_REGION", "us-west-2")
    assert config.settings().s3_region == "us-west-2"


def test_settings_are_read_again_when_a_variable_changes_and_shared_otherwise(env):
    first = config.settings()
    assert config.settings() is first
    env.setenv("BULKIMPORT_CHUNK_ROWS", "7")
    assert config.settings().chunk_rows == 7
    assert config.reload().chunk_rows == 7


def test_the_private_redis_password_is_picked_up_once_written(env):
    s = config.settings()
    assert "@" not in s.redis_url
    s.home.mkdir(parents=True)
    config.redis_password_file().write_text("pw\n")
    assert config.settings().redis_url == "redis://:pw@127.0.0.1:6399/0"


def test_docs_configuration_md_is_what_the_model_generates():
    written = (REPO / "docs" / "configuration.md").read_text()
    assert written == markdown(), "regenerate: python -m bulkimport.config --markdown > docs/configuration.md"


def test_every_setting_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, f"{variable(name, field)} has no description"


def test_other_docs_name_only_real_settings_with_their_real_defaults():
    # Rows like "| `BULKIMPORT_X` | `default` | ..." in the README and docs must agree with the model, in tables
    # whose second column is headed "default": a value in backticks is the model's, "unset" is no default.
    fields = {
        part: field for name, field in Settings.model_fields.items() for part in variable(name, field).split(" or ")
    }
    row = re.compile(r"^\| `([A-Z][A-Z0-9_]+)` \| ([^|]+) \|")
    pages = [REPO / "README.md", *(p for p in (REPO / "docs").glob("*.md") if p.name != "configuration.md")]
    checked = 0
    for page in pages:
        header = ""
        for line in page.read_text().splitlines():
            header = line if line.startswith("| variable |") else header
            if not (match := row.match(line)):
                continue
            name, shown = match[1], match[2].strip()
            assert name in fields, f"{page.name} documents {name}, which is no setting"
            if header.startswith("| variable | default |"):
                checked += 1
                if shown.startswith("`"):
                    assert shown.strip("`") == default(fields[name]), f"{page.name}: {name}'s default"
                elif shown.startswith("unset"):
                    assert fields[name].default is None, f"{page.name}: {name} has a default"
    assert checked, "no table of settings and defaults found outside docs/configuration.md"


def test_no_module_reads_the_environment_but_the_settings():
    reads = []
    for path in [*REPO.glob("bulkimport/**/*.py"), *REPO.glob("views/*.py"), REPO / "app.py", REPO / "serve.py"]:
        if path.name in ("config.py", "settings_model.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            text = ast.unparse(node) if isinstance(node, ast.Call | ast.Subscript) else ""
            is_read = text.startswith(("os.getenv(", "os.environ.get(")) or (
                isinstance(node, ast.Subscript) and text.startswith("os.environ[") and isinstance(node.ctx, ast.Load)
            )
            if is_read:
                reads.append(f"{path.relative_to(REPO)}:{node.lineno}: {text}")
    assert reads == []


def _modules_after(code: str, env: dict | None = None) -> set[str]:
    probe = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


HEAVY = {"pandas", "duckdb", "polars", "pyarrow"}


def test_help_loads_neither_pandas_duckdb_nor_pydantic():
    loaded = _modules_after("""
        from bulkimport import cli
        try:
            cli.main(["--help"])
        except SystemExit:
            pass
    """)
    assert not loaded & (HEAVY | {"pydantic", "pydantic_settings"})


def test_status_loads_neither_pandas_nor_duckdb(home):
    import os

    loaded = _modules_after(
        """
        from bulkimport import cli
        assert cli.main(["status", "no-such-job"]) == 2
        """,
        env={**os.environ, "BULKIMPORT_TOKEN": TOKENS["root"]},
    )
    assert "bulkimport.registry" in loaded and "pydantic_settings" in loaded
    assert not loaded & HEAVY


def test_the_settings_module_prints_the_docs():
    result = subprocess.run(
        [sys.executable, "-m", "bulkimport.config", "--markdown"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == Path(REPO / "docs" / "configuration.md").read_text()
