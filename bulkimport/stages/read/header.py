"""Match a file's header to a dataset's columns: names, aliases, the user's choices."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from bulkimport.datasets import Dataset
from bulkimport.errors import FileRefused


def normalise(name: str) -> str:
    """Compare headers ignoring case, spaces and punctuation."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def _known_names(dataset: Dataset) -> dict[str, str]:
    names = {}
    for column in dataset.columns:
        names[normalise(column)] = column
        for alias in dataset.aliases.get(column, ()):
            names[normalise(alias)] = column
    return names


def lost_delimiter_splits(header: list[str], dataset: Dataset) -> list[tuple[int, int]]:
    """Ways to cut one header cell in two names of dataset columns the header does not name yet
    (`stockean` -> `stock`, `ean`): (cell, offset), one per pair of columns."""
    known = _known_names(dataset)
    named = {known[n] for n in map(normalise, header) if n in known}
    found: dict[tuple[int, str, str], tuple[int, int]] = {}
    for cell, name in enumerate(header):
        if normalise(name) in known or len(name) > 200:
            continue
        for at in range(1, len(name)):
            left, right = known.get(normalise(name[:at])), known.get(normalise(name[at:]))
            if left and right and left != right and not {left, right} & named:
                found.setdefault((cell, left, right), (cell, at))
    return list(found.values())


@dataclass(frozen=True)
class HeaderMatch:
    """How a file's header lines up with a dataset's columns."""

    header: list[str]
    mapping: dict[str, str]  # file column -> dataset column
    suggestions: dict[str, str]  # unmatched file column -> a close dataset column (offered, not applied)
    missing: list[str]  # required dataset columns nobody maps to
    extra: list[str]  # file columns that are ignored


def match_header(header: list[str], dataset: Dataset, chosen: dict[str, str | None] | None = None) -> HeaderMatch:
    """Match by normalised name and aliases, then apply the user's ``chosen`` entries on top.

    A chosen entry maps a file column to a dataset column (taking that column
    from any other file column) or, with an empty value, ignores it.
    """
    known = _known_names(dataset)
    mapping: dict[str, str] = {}
    for name in header:
        column = known.get(normalise(name))
        if column and column not in mapping.values() and name not in mapping:
            mapping[name] = column
    for name, column in (chosen or {}).items():
        if name not in header:
            continue
        if column:
            mapping = {h: c for h, c in mapping.items() if c != column}
            mapping[name] = column
        else:
            mapping.pop(name, None)
    mapping = {h: mapping[h] for h in header if h in mapping}  # file order
    unmatched = [h for h in header if h not in mapping and h.strip()]
    free = [c for c in dataset.columns if c not in mapping.values()]
    suggestions = {}
    for name in unmatched:
        close = difflib.get_close_matches(normalise(name), [normalise(c) for c in free], n=1, cutoff=0.6)
        if close:
            suggestions[name] = next(c for c in free if normalise(c) == close[0])
    missing = [c for c in dataset.required if c not in mapping.values()]
    return HeaderMatch(header, mapping, suggestions, missing, unmatched)


def refuse_missing(match: HeaderMatch, dataset: Dataset, file_name: str) -> None:
    if not match.missing:
        return
    hints = []
    for column in match.missing:
        close = difflib.get_close_matches(column, match.header, n=2, cutoff=0.5)
        close += [h for h, c in match.suggestions.items() if c == column and h not in close]
        hints.append(column + (f" (closest in file: {', '.join(map(repr, close))})" if close else ""))
    raise FileRefused(
        f"{file_name}: the header lacks required column(s) {', '.join(hints)}. "
        f"Found columns: {', '.join(map(repr, match.header)) or 'none'}. "
        f"Dataset {dataset.name!r} expects: {', '.join(dataset.columns)}."
    )
