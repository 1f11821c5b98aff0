"""Every command the README and docs/*.md show is one that works, and every command is documented.

The convention (docs/architecture.md, "Tests"): in a fenced ```bash, ```sh or ```console block
every line is a command, a trailing ``# comment`` is not part of it, and in a ```console block
only lines starting with ``$ `` are commands (the rest is their output). Each command's program
must be one this test knows how to check:

- ``bulkimport ...``: parsed by the real parser (``parse_args``, so the subcommand, every option,
  choices and required arguments must be right), and no option the parser hides (``--as``);
- ``make TARGET``: the target exists in the Makefile;
- ``python -m MODULE``: the module answers ``--help``;
- ``pytest PATH``: the paths exist.

Commands that need no worker (``--help``, ``datasets list|show|template|draft|check``, ``preview``)
are also run, as a logged-in user, in a fresh BULKIMPORT_HOME.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkimport.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
USAGE = REPO / "docs" / "usage.md"
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$")  # JOB, NAME, FILE: stands for a value the reader supplies
# Subcommands that need neither a worker nor Redis: the test runs the documented lines of these.
RUNNABLE = {("datasets", "list"), ("datasets", "show"), ("datasets", "template"), ("datasets", "draft")}
RUNNABLE |= {("datasets", "check"), ("preview",)}
STORES_SAMPLE = "Filiaal nr;Naam;Omzet (EUR)\nS0001;Centrum;1.234,50\nS0002;Noord;987,00\nS0003;Zuid;1.010,25\n"


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str
    argv: tuple[str, ...]  # the program and its arguments, up to the first shell operator

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}: {self.text}"

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name


def fenced_blocks(page: Path):
    """(language, first line number, lines) of every fenced block of a Markdown page."""
    language, start, lines = None, 0, []
    for number, line in enumerate(page.read_text().splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and language is None:
            language, start, lines = fence.group(1), number + 1, []
        elif fence:
            yield language, start, lines
            language = None
        elif language is not None:
            lines.append(line)


def commands_of(page: Path) -> list[Command]:
    found = []
    for language, start, lines in fenced_blocks(page):
        if language not in SHELL_BLOCKS:
            continue
        for offset, raw in enumerate(lines):
            text = raw.strip()
            if language == "console":
                if not text.startswith("$ "):
                    continue
                text = text[2:]
            lexer = shlex.shlex(text, posix=False, punctuation_chars=True)  # quotes kept: ';' is no operator
            lexer.whitespace_split = True
            tokens = list(lexer)
            if not tokens:
                continue
            argv = []
            for token in tokens:
                if token in OPERATORS:
                    break
                argv.append("".join(shlex.split(token)))
            while argv and ENV_ASSIGNMENT.match(argv[0]):
                argv.pop(0)
            found.append(Command(page, start + offset, text, tuple(argv)))
    return found


COMMANDS = [command for page in PAGES for command in commands_of(page)]


def of(program: str) -> list[Command]:
    return [c for c in COMMANDS if c.program == program]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def command_path(argv: tuple[str, ...]) -> tuple[tuple[str, ...], argparse.ArgumentParser]:
    """The subcommands named at the start of ``argv`` (``("datasets", "show")``) and the parser of the last."""
    parser, path = build_parser(), []
    for token in argv:
        choices = subparsers(parser)
        if token not in choices:
            break
        parser = choices[token]
        path.append(token)
    return tuple(path), parser


def parse_problem(argv: tuple[str, ...]) -> str | None:
    """What the real parser says is wrong with ``argv`` (None: it parses)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(list(argv))
        except SystemExit as exc:
            if exc.code:
                return err.getvalue().strip().splitlines()[-1]
    _, parser = command_path(argv)
    for token in argv:
        if token.startswith("--"):
            option = parser._option_string_actions.get(token.split("=", 1)[0])
            if option is not None and option.help == argparse.SUPPRESS:
                return f"{token} is no longer an option (the parser only keeps it to refuse it)"
    return None


def test_the_docs_show_commands_of_every_kind_this_test_checks():
    """The extraction works: a regression in it would otherwise pass every test below vacuously."""
    assert {"bulkimport", "make"} <= {c.program for c in COMMANDS}
    assert len(of("bulkimport")) > 50
    unknown = [c.where for c in COMMANDS if c.program not in {"bulkimport", "make", "python", "pytest"}]
    assert not unknown, "commands this test cannot check (add a check or use another block):\n" + "\n".join(unknown)


@pytest.mark.parametrize("command", of("bulkimport"), ids=lambda c: c.where)
def test_every_bulkimport_command_in_the_docs_parses_with_the_real_parser(command):
    problem = parse_problem(command.argv[1:])
    assert problem is None, f"{command.where}\n  {problem}"


def test_every_make_target_in_the_docs_exists():
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", (REPO / "Makefile").read_text(), re.MULTILINE))
    missing = [c.where for c in of("make") for target in c.argv[1:] if target not in targets]
    assert not missing, "\n".join(missing)


def test_every_python_module_in_the_docs_answers_help():
    modules = sorted({c.argv[c.argv.index("-m") + 1] for c in of("python") if "-m" in c.argv})
    assert modules, "no `python -m` command found in the docs"
    assert all("-m" in c.argv for c in of("python")), "only `python -m MODULE` commands are checked"
    for module in modules:
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"python -m {module} --help: {done.stderr}"


def test_every_test_path_in_the_docs_exists():
    paths = [a for c in of("pytest") for a in c.argv[1:] if not a.startswith("-")]
    assert paths
    missing = [p for p in paths if not (REPO / p.split("::")[0]).exists()]
    assert not missing, missing


def test_every_test_file_the_docs_name_exists():
    named = {m for page in PAGES for m in re.findall(r"`(tests/[\w/.]+\.py)(?:::\w+)?`", page.read_text())}
    assert named
    assert not [path for path in named if not (REPO / path).exists()]


def test_every_subcommand_of_the_cli_is_shown_in_usage():
    """Like sqlite-utils' test_docs: a new command fails this test until docs/usage.md shows it."""
    shown = {command_path(c.argv[1:])[0] for c in commands_of(USAGE) if c.program == "bulkimport"}
    shown |= {path[:1] for path in shown}
    every = set()
    for name, parser in subparsers(build_parser()).items():
        every.add((name,))
        every |= {(name, action) for action in subparsers(parser)}
    missing = sorted(" ".join(path) for path in every - shown)
    assert not missing, f"commands missing from docs/usage.md: {missing}"


def test_every_python_block_in_the_docs_compiles():
    blocks = [
        (page, start, "\n".join(lines))
        for page in PAGES
        for language, start, lines in fenced_blocks(page)
        if language == "python"
    ]
    assert blocks
    for page, start, source in blocks:
        compile(source, f"{page.relative_to(REPO)}:{start}", "exec")


# ---------------------------------------------------------------- running what needs no worker


@pytest.fixture(scope="module")
def logged_in(tmp_path_factory) -> dict[str, str]:
    """The environment of a person logged in to a fresh installation: a new home, a user with a token."""
    root = tmp_path_factory.mktemp("docs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKIMPORT_")}
    env.update(
        BULKIMPORT_HOME=str(root / "home"),
        XDG_CONFIG_HOME=str(root / "config"),
        REDIS_URL="redis://127.0.0.1:9/0",  # nothing answers: these commands must not need Redis
    )
    password = "correct horse battery"
    bulkimport(
        env, root, "users", "add", "ana", "--role", "analyst", "--brands", "acme", "--password-stdin", stdin=password
    )
    env["BULKIMPORT_TOKEN"] = bulkimport(env, root, "users", "token", "ana").stdout.strip().splitlines()[-1]
    return env


def bulkimport(env: dict, cwd: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "bulkimport", *argv], cwd=cwd, env=env, input=stdin, capture_output=True, text=True
    )
    assert done.returncode == 0, f"bulkimport {' '.join(argv)} exited {done.returncode}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def files(logged_in, tmp_path_factory) -> Path:
    """The files the documented commands name: the sample, a data file, a folder with a drafted dataset."""
    folder = tmp_path_factory.mktemp("files")
    (folder / "examples").mkdir()
    shutil.copy(REPO / "examples" / "products.csv", folder / "examples")
    shutil.copy(REPO / "examples" / "products.csv", folder / "data.csv")
    (folder / "stores-sample.csv").write_text(STORES_SAMPLE)
    (folder / "my-datasets").mkdir()
    bulkimport(
        logged_in, folder, "datasets", "draft", "stores", "--from", "stores-sample.csv", "-o", "my-datasets/x.py"
    )
    return folder


def runnable(command: Command) -> bool:
    path, _ = command_path(command.argv[1:])
    if any(PLACEHOLDER.match(a) for a in command.argv[1:]):
        return False
    return "--help" in command.argv or path in RUNNABLE or path[:1] in RUNNABLE


RUNS = sorted({c.argv: c for c in of("bulkimport") if runnable(c)}.values(), key=lambda c: c.where)


def test_the_docs_show_commands_this_test_runs():
    assert {command_path(c.argv[1:])[0] for c in RUNS} >= {("preview",), ("datasets", "show"), ("datasets", "draft")}


@pytest.mark.parametrize("command", RUNS, ids=lambda c: c.where)
def test_documented_commands_that_need_no_worker_run(command, logged_in, files, tmp_path):
    cwd = shutil.copytree(files, tmp_path / "work")  # a folder of its own: a command may write a file
    bulkimport(logged_in, cwd, *command.argv[1:])


def test_bulkimport_help_lists_every_subcommand(logged_in, tmp_path):
    out = bulkimport(logged_in, tmp_path, "--help").stdout
    assert all(name in out for name in subparsers(build_parser()))
