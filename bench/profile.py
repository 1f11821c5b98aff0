"""Summarise a py-spy profile of bulkimport_stage: where its time goes, by step and by function.

py-spy samples the process from outside, so unlike an in-process profiler it
adds nothing to each Python call; code that makes millions of tiny calls (the
line-by-line reader) is not inflated. ``python -m bench --profile PATH
--profiler py-spy`` records ``PATH.raw`` (collapsed stacks) and writes this
summary to ``PATH.spy.txt``.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = "stage_file"


def py_spy_binary() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def _function(frame: str) -> str:
    """'name (path:line)' -> 'name (path)'."""
    return re.sub(r":\d+\)$", ")", frame)


def read_stacks(raw: Path, root: str = ROOT) -> list[tuple[list[str], int]]:
    """Stacks (from ``root`` down) with their sample counts."""
    stacks = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_function(f) for f in stack.split(";")]
        start = next((i for i, f in enumerate(frames) if f.startswith(root + " ")), None)
        if start is not None:
            stacks.append((frames[start:], int(count)))
    return stacks


def _has(*names: str) -> Callable[[list[str]], bool]:
    return lambda frames: any(f.split(" ", 1)[0] in names for f in frames)


# The steps of stage_file, first match wins (so order from specific to general). The fast path's
# steps come first; what it hands the careful path shows under the careful path's steps.
STEPS: list[tuple[str, Callable[[list[str]], bool]]] = [
    ("open: encoding, sniffing, header", _has("open_source")),
    ("fast: compile the dataset's checks", _has("compile_dataset")),
    ("fast: UTF-8 copy of a file in another encoding", _has("utf8_copy")),
    ("fast: scan the lines (numpy: starts, cells, quotes)", _has("scan_lines")),
    ("fast: quoted lines, stretches for the careful reader", _has("_split_work")),
    ("fast: DuckDB splits the lines (read_csv)", _has("_load")),
    ("fast: checks with no SQL form (pandera, in batches)", _has("_run_python_check")),
    ("fast: compiled checks (DuckDB)", _has("check_rows")),
    ("fast: rows the checks did not accept -> careful records", _has("rejected_by_checks")),
    ("fast: accepted rows -> lake", _has("insert_checked")),
    ("read: split the file into records (csv module fed line by line)", _has("text_records")),
    ("read: records -> chunk DataFrame (cell checks, strip, DataFrame of objects)", _has("read_chunks")),
    ("validate: normalise decimal commas and dates", _has("normalise_values")),
    ("validate: EAN-13 check digit (a Python call per value)", _has("Products.ean_is_valid")),
    ("validate: pandera coercion (both passes)", _has("DataFrameSchemaBackend.coerce_dtype")),
    ("validate: pandera checks", _has("DataFrameSchemaBackend.run_checks_and_handle_errors")),
    ("validate: failure cases -> rejects", _has("_failures")),
    ("validate: other pandera (schema set-up, frame copies)", _has("DataFrameSchema.validate")),
    ("write: valid rows -> lake (DuckDB scans the pandas frame)", _has("_insert_valid")),
    ("write: rejects -> lake", _has("_insert_rejects")),
    ("write: duplicate keys and counts at the end", _has("stage_file.<locals>.finish")),
    ("write: drop an earlier attempt's rows, create tables", _has("drop_job_rows", "ensure_tables")),
    ("write: transactions (BEGIN/COMMIT to the catalog)", _has("write")),
]


def _fallback(frames: list[str]) -> str:
    """A step no rule names: the function right under validate_chunk or read_chunks that holds it."""
    for parent, step in (("validate_chunk", "validate"), ("read_chunks", "read")):
        names = [f.split(" ", 1)[0] for f in frames]
        if parent in names and names.index(parent) + 1 < len(names):
            return f"{step}: {names[names.index(parent) + 1]}"
    return "other"


def summarise(raw: Path, rate: int) -> str:
    stacks = read_stacks(raw)
    total = sum(n for _, n in stacks)
    if not total:
        return f"no samples under {ROOT} in {raw}"
    steps: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, n in stacks:
        label = next((name for name, match in STEPS if match(frames)), None) or _fallback(frames)
        steps[label] += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n

    def row(count: int, name: str) -> str:
        return f"{100 * count / total:6.1f}%  {count / rate:7.1f}s  {name}"

    lines = [
        f"py-spy, {rate} samples/s, busy samples under {ROOT}: {total} ({total / rate:.1f}s of CPU-busy time)",
        "",
        "by step:",
    ]
    lines += [row(n, name) for name, n in steps.most_common()]
    lines += ["", "by function, inclusive (top 40):"]
    lines += [row(n, name) for name, n in inclusive.most_common(40)]
    lines += ["", "by function, own time (top 30; a Python frame's own time includes the C code it calls):"]
    lines += [row(n, name) for name, n in own.most_common(30)]
    return "\n".join(lines) + "\n"
