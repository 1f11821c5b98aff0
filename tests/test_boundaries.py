"""The bug this project must never repeat: the web side running actor code in-process."""

import subprocess
import sys
import textwrap

from tests.conftest import REPO

FORBIDDEN = ("bulkimport.actors", "bulkimport.runner")


def modules_loaded_by(code: str) -> set[str]:
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print("\\n".join(sorted(sys.modules)))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_cli_and_python_api_do_not_import_actor_code():
    loaded = modules_loaded_by("import bulkimport, bulkimport.cli, bulkimport.workflow, bulkimport.dispatch")
    assert not loaded & set(FORBIDDEN)


def test_dashboard_pages_do_not_import_actor_code():
    # Run every page through Streamlit's AppTest in a fresh interpreter.
    loaded = modules_loaded_by("""
        import os
        from pathlib import Path
        from streamlit.testing.v1 import AppTest
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
        at = AppTest.from_file("app.py", default_timeout=60).run()
        views = sorted(Path("views").glob("*.py"))
        assert len(views) >= 3, views
        for view in views:
            at.switch_page(str(view)).run()
    """)
    assert "streamlit" in loaded
    assert not loaded & set(FORBIDDEN)


def test_only_dispatch_sends_messages():
    senders = []
    for path in [*REPO.glob("bulkimport/**/*.py"), *REPO.glob("views/*.py"), REPO / "app.py"]:
        if not path.exists():
            continue
        text = path.read_text()
        if ".enqueue(" in text:
            senders.append(path.relative_to(REPO).as_posix())
    assert senders == ["bulkimport/dispatch.py"]


def test_nobody_asks_dramatiq_for_a_default_broker():
    # dramatiq.get_broker() may quietly build a RabbitMQ broker; ours is built in bulkimport/broker.py.
    offenders = [
        p.relative_to(REPO).as_posix()
        for p in [*REPO.glob("bulkimport/**/*.py"), *REPO.glob("views/*.py")]
        if "dramatiq.get_broker" in p.read_text()
    ]
    assert offenders == []
