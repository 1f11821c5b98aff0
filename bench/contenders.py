"""The contenders, each run once in a fresh process by ``python -m bench.run_one``.

Each function does its untimed set-up, times only the work, reads the peak
memory of the process that did the work, and then (untimed) reports the bad
lines it found. Imports of the heavy libraries happen inside the functions so a
contender pays only for what it uses, and so its peak RSS is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import alternatives, ours
from bench.generate import FileKind
from bench.measure import REPO, Outcome, Skipped  # noqa: F401 - the names callers know the registry by


@dataclass(frozen=True)
class Contender:
    run: Callable[[Path, Path, FileKind], Outcome]
    # How it judges a key that repeats: "later" copies (every copy after the first, as bulkimport
    # does) or "every" copy; None: it does not validate rows.
    duplicates: str | None = None
    needs_staged_job: bool = False

    @property
    def validates(self) -> bool:
        return self.duplicates is not None


CONTENDERS: dict[str, Contender] = {
    "baseline_duckdb": Contender(alternatives.baseline_duckdb),
    "pandas_pandera": Contender(alternatives.pandas_pandera, duplicates="later"),
    "polars_pandera": Contender(alternatives.polars_pandera, duplicates="every"),
    "frictionless": Contender(alternatives.frictionless, duplicates="later"),
    "bulkimport_stage": Contender(ours.bulkimport_stage, duplicates="later"),
    "bulkimport_careful": Contender(ours.bulkimport_careful, duplicates="later"),
    "bulkimport_commit": Contender(ours.bulkimport_commit, needs_staged_job=True),
    "duckdb_merge": Contender(ours.duckdb_merge, needs_staged_job=True),
    "bulkimport_e2e": Contender(ours.bulkimport_e2e, duplicates="later"),
}
STEPS: dict[str, Callable[[Path, Path, FileKind], Outcome]] = {
    **{name: c.run for name, c in CONTENDERS.items()},
    "prepare_commit": ours.prepare_commit,
}
