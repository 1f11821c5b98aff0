"""What every contender reports, and how it measures time and memory."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class Skipped(Exception):
    """The contender cannot run here; the message says why."""


@dataclass
class Outcome:
    seconds: float
    peak_rss_mb: float
    bad_lines: list[int] | None  # None: this contender does not validate rows
    extra: dict = field(default_factory=dict)


def own_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
