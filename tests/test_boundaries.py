"""The bug this project must never repeat: the web side running actor code in-process.

The senders (the dashboard, the CLI, the notebook API and the workflow they share) record a job
and send a message naming the actor, through bulkimport.dispatch. They never import the worker's
code, never talk to dramatiq themselves, and never call ``.send()`` on an actor.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

# Globs, so that a module split into a package (cli.py into cli/) stays covered.
SENDERS = (
    "app.py",
    "views/**/*.py",
    "bulkimport/cli*.py",
    "bulkimport/cli/**/*.py",
    "bulkimport/api*.py",
    "bulkimport/api/**/*.py",
    "bulkimport/workflow*.py",
    "bulkimport/workflow/**/*.py",
    "bulkimport/ui*.py",
    "bulkimport/ui/**/*.py",
)
# Code only a worker runs: importing any of it from a sender, even indirectly, is the bug.
WORKER_MODULES = ("bulkimport.actors", "bulkimport.runner", "bulkimport.middleware", "bulkimport.worker")
# The stage steps a worker runs for a message. Senders may use the plain read-only stages
# (reading a file for a preview, reviewing staged rows) but not these.
WORKER_STEPS = (
    *WORKER_MODULES,
    "bulkimport.broker",  # only dispatch talks to the broker on the sending side
    "bulkimport.stages.commit",
    "bulkimport.stages.validate",
    "bulkimport.stages.fix",
    "bulkimport.stages.repair",
    "bulkimport.stages.stage.stage_file",
    "bulkimport.stages.stage.drop_job_rows",
)
DISPATCH = "bulkimport.dispatch"
# Ways to put a message on a queue without dispatch: an actor's own methods, a broker's.
SENDING_ATTRIBUTES = ("send", "send_with_options", "message", "message_with_options", "enqueue", "get_broker")


def sender_files() -> list[Path]:
    return sorted({path for pattern in SENDERS for path in REPO.glob(pattern)})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


@dataclass
class Offence:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def offences(path: Path, source: str | None = None) -> list[Offence]:
    """What in one sender's source breaks the rule: worker code imported, dramatiq used, a message sent
    other than through bulkimport.dispatch."""
    source = path.read_text() if source is None else source
    tree = ast.parse(source, str(path))
    where = path.relative_to(REPO).as_posix()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found: list[Offence] = []
    aliases: dict[str, str] = {}  # local name -> the module or object it is bound to

    def flag(node: ast.AST, what: str) -> None:
        found.append(Offence(where, node.lineno, what))

    def resolved(node: ast.AST) -> str:
        """The module or object an expression like ``dispatch.send`` names, by this file's imports."""
        head, _, rest = (_dotted(node) or "").partition(".")
        if head not in aliases:
            return ""
        return f"{aliases[head]}.{rest}" if rest else aliases[head]

    def imported(node: ast.AST, full: str, local: str, bound: str | None = None) -> None:
        aliases[local] = bound or full
        if _within(full, WORKER_STEPS):
            flag(node, f"imports {full}")
        if _within(full, ("dramatiq",)):
            flag(node, f"imports {full}: senders send through {DISPATCH}, never dramatiq itself")
        if full == "bulkimport.stages.stage":
            flag(node, f"imports the module {full}, which holds the worker's stage_file")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imported(node, alias.name, alias.asname)
                else:  # `import bulkimport.runner` binds the name bulkimport
                    head = alias.name.split(".")[0]
                    imported(node, alias.name, head, head)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if _within(base, WORKER_STEPS) or _within(base, ("dramatiq",)):
                imported(node, base, base)
            for alias in node.names:
                imported(node, f"{base}.{alias.name}", alias.asname or alias.name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if _within(resolved(node), WORKER_STEPS):
                flag(node, f"uses {_dotted(node)}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in SENDING_ATTRIBUTES:
            if not (func.attr == "send" and resolved(func.value) == DISPATCH):
                flag(node, f".{func.attr}(...) on {_dotted(func.value) or 'an object'}: send through {DISPATCH}")
        elif isinstance(func, ast.Name) and func.id in SENDING_ATTRIBUTES:
            if resolved(func) != f"{DISPATCH}.send":
                flag(node, f"{func.id}(...) is not {DISPATCH}.send")
        if _dotted(func) in ("importlib.import_module", "import_module", "__import__") and node.args:
            name = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
            if isinstance(name, str) and (_within(name, WORKER_STEPS) or _within(name, ("dramatiq",))):
                flag(node, f"imports {name} by name")
    return sorted(found, key=lambda o: o.line)


def test_the_senders_are_found_under_their_globs():
    names = {module_name(p) for p in sender_files()}
    assert "app" in names
    assert {"views.upload", "views.review"} <= names
    for face in ("bulkimport.cli", "bulkimport.api", "bulkimport.workflow", "bulkimport.ui"):
        assert any(n == face or n.startswith(face + ".") for n in names), (face, sorted(names))


def test_senders_import_no_worker_code_and_send_only_through_dispatch():
    found = [str(o) for path in sender_files() for o in offences(path)]
    assert found == []


BREAKS = {
    "from dramatiq import get_broker": "from dramatiq import get_broker\nget_broker().enqueue(m)\n",
    "import dramatiq": "import dramatiq\ndramatiq.get_broker()\n",
    "an actor's send": "from bulkimport.actors import validate_and_stage\nvalidate_and_stage.send(job_id)\n",
    "an actor's send_with_options": "from bulkimport import actors as a\na.commit_to_production.send_with_options()\n",
    "an actor called in-process": "import bulkimport.runner\nbulkimport.runner.validate_and_stage(job_id)\n",
    "the worker's stage step": "from bulkimport.stages.stage import stage_file\n",
    "the commit step": "from bulkimport.stages import commit\n",
    "the broker": "from bulkimport.broker import redis_broker\nredis_broker().enqueue(m)\n",
    "an import by name": "import importlib\nimportlib.import_module('bulkimport.actors')\n",
    "send on something else": "from bulkimport import workflow\nworkflow.send('validate_and_stage', j)\n",
}


@pytest.mark.parametrize("code", BREAKS.values(), ids=BREAKS.keys())
def test_the_check_catches_each_way_round_dispatch(code):
    page = REPO / "views" / "upload.py"
    assert offences(page, page.read_text() + "\n" + code), code


@pytest.mark.parametrize("code", ["from . import runner\n", "from .actors import validate_and_stage\n"])
def test_the_check_resolves_relative_imports(code):
    assert offences(REPO / "bulkimport" / "workflow.py", code)


@pytest.mark.parametrize(
    "code",
    [
        "from bulkimport import dispatch\ndispatch.send(dispatch.VALIDATE_AND_STAGE, job_id)\n",
        "import bulkimport.dispatch\nbulkimport.dispatch.send('commit_to_production', job_id)\n",
        "from bulkimport.dispatch import send\nsend('validate_and_stage', job_id)\n",
        "import bulkimport.workflow\nbulkimport.workflow.submit(path)\n",
    ],
)
def test_the_check_lets_dispatch_send_by_name(code):
    assert offences(REPO / "views" / "upload.py", code) == []


def modules_loaded_by(code: str) -> set[str]:
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print("\\n".join(sorted(sys.modules)))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def _worker_modules(loaded: set[str]) -> set[str]:
    return {m for m in loaded if _within(m, WORKER_MODULES)}


def test_importing_the_cli_the_api_and_the_workflow_loads_no_worker_code():
    modules = sorted(
        m for m in map(module_name, sender_files()) if m.startswith("bulkimport") and not m.startswith("bulkimport.ui")
    )
    loaded = modules_loaded_by("import bulkimport\n" + "".join(f"import {m}\n" for m in modules))
    assert set(modules) <= loaded
    assert _worker_modules(loaded) == set()


def test_dashboard_pages_load_no_worker_code():
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
    assert {"streamlit", "bulkimport.ui"} <= loaded
    assert _worker_modules(loaded) == set()


def _calls_to(attribute: str) -> list[str]:
    """Where in the package, the pages and app.py ``.<attribute>(...)`` or ``<attribute>(...)`` is called."""
    found = []
    for path in sorted({*REPO.glob("bulkimport/**/*.py"), *REPO.glob("views/**/*.py"), REPO / "app.py"}):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name == attribute:
                    found.append(path.relative_to(REPO).as_posix())
    return sorted(set(found))


def test_only_dispatch_enqueues_messages():
    assert _calls_to("enqueue") == ["bulkimport/dispatch.py"]


def test_nobody_asks_dramatiq_for_a_default_broker():
    # dramatiq.get_broker() may quietly build a RabbitMQ broker; ours is built in bulkimport/broker.py.
    assert _calls_to("get_broker") == []
