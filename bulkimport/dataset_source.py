"""The text of a drafted dataset module: a pandera model with a comment on every guess, and DATASET.

Written as ``ruff format`` would write it (double quotes, lines within 120 characters).
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from typing import TYPE_CHECKING

from bulkimport.dataset_docs import date_format_words
from bulkimport.stages.read import normalise

if TYPE_CHECKING:
    from bulkimport.dataset_draft import ColumnGuess, Draft


def literal(value) -> str:
    """Python source for a string, list or tuple of strings, in double quotes (as ruff formats them)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    items = ", ".join(literal(v) for v in value)
    if isinstance(value, tuple):
        return f"({items},)" if len(value) == 1 else f"({items})"
    return f"[{items}]"


def raw_pattern(pattern: str) -> str:
    """A pattern as a raw string literal (its backslashes kept as written)."""
    if '"' in pattern or pattern.endswith("\\"):
        return repr(pattern)
    return f'r"{pattern}"'


def class_name(dataset: str) -> str:
    return "".join(part.capitalize() for part in dataset.split("_")) or "Draft"


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        width=116 - len(indent),
        initial_indent=f"{indent}# ",
        subsequent_indent=f"{indent}#   ",
        break_on_hyphens=False,
    )


def _field(column: ColumnGuess) -> str:
    kwargs = dict(column.checks)
    if not column.required:
        kwargs["nullable"] = "True"
    if column.example is not None:
        kwargs["metadata"] = f'{{"example": {literal(column.example)}}}'
    python_type = "pd.Int64Dtype" if column.python_type == "int" and not column.required else column.python_type
    annotation = f"Series[{python_type}]" + ("" if column.required else " | None")
    line = f"    {column.name}: {annotation}"
    if not kwargs:
        return line
    call = f"{line} = pa.Field({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
    if len(call) <= 120:
        return call
    return "\n".join([f"{line} = pa.Field(", *(f"        {k}={v}," for k, v in kwargs.items()), "    )"])


def render(draft: Draft) -> str:
    """The dataset module's text."""
    about = [
        f"Dataset {draft.name}, drafted by `bulkimport datasets draft` on {dt.date.today().isoformat()}",
        f"from {draft.sample} ({draft.rows} rows).",
        "",
        "Every guess has a comment: read them, change what the sample could not know, then check the module",
        "(`bulkimport datasets check FOLDER`) and put it in the folder named by BULKIMPORT_DATASETS.",
    ]
    if draft.skipped:
        about.append(f"{draft.skipped} record(s) of the sample were not whole rows (a broken quote, say): left out.")
    lines = [
        f'"""{about[0]}',
        *about[1:],
        '"""',
        "",
        "import pandas as pd",
        "import pandera.pandas as pa",
        "from pandera.typing import Series",
        "",
        "from bulkimport.datasets import Dataset",
        "",
        "",
        f"class {class_name(draft.name)}(pa.DataFrameModel):",
    ]
    for column in draft.columns:
        named = column.name if column.header == column.name else f"{literal(column.header)} -> {column.name}"
        lines += _comment(f"{named}: " + "; ".join(column.notes), "    ")
        lines.append(_field(column))
    lines += ["", "    class Config:", "        coerce = True", "        strict = False", "", ""]
    aliases = {c.name: (c.header,) for c in draft.columns if normalise(c.header) != normalise(c.name)}
    lines += [
        "DATASET = Dataset(",
        f"    name={literal(draft.name)},",
        f"    description={literal(f'Drafted from {draft.sample}: say what one row is.')},",
        f"    model={class_name(draft.name)},",
        *_comment(f"key: {draft.key_note}", "    "),
        f"    key={literal(tuple(draft.key))},",
        "    # SQL types: from DuckDB's sniffer, adjusted as each column's comment says",
        "    sql_types={",
        *(f"        {literal(c.name)}: {literal(c.sql_type)}," for c in draft.columns),
        "    },",
        "    # required: the columns with no blank in the sample",
        f"    required={literal(tuple(c.name for c in draft.columns if c.required))},",
    ]
    if aliases:
        lines += ["    # the sample's own header names, so files like it map without help", "    aliases={"]
        lines += [f"        {literal(name)}: {literal(headers)}," for name, headers in aliases.items()]
        lines.append("    },")
    if draft.decimal_comma:
        lines.append("    decimal_comma=True,  # numbers like 1.234,50 in the sample")
    if draft.date_formats:
        words = ", ".join(date_format_words(f) for f in draft.date_formats)
        lines.append(f"    date_formats={literal(tuple(draft.date_formats))},  # {words}")
    lines.append(")")
    return "\n".join(lines) + "\n"
