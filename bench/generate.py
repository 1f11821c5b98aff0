"""The benchmark's products CSVs, the same for the same seed, with their bad lines known exactly.

Two files:

- **clean**: UTF-8, `,`, ISO dates, one line per row. Bad rows come in four
  kinds, so every contender has to really coerce and check: a price that is not
  a number, a negative stock, a currency outside the list, a SKU that breaks the
  pattern. Every other row is valid for the products dataset (unique SKUs,
  prices with two decimals, EAN-13s with their check digit, ISO dates).
- **messy**: what a spreadsheet on a German Windows machine exports: cp1252
  (names with umlauts, accents, `€`, `–` and `’`), `;` as the delimiter because
  prices use a decimal comma (`1.234,50`), dates as `01.03.2024`, quoted names
  that hold a `;`, a doubled quote or a line break (so a row can span lines), and
  duplicate keys (a later row repeating an earlier SKU), on top of the clean
  file's four kinds of bad values.

Line 1 is the header; a row's line is the line it starts on.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

HEADER = ("sku", "name", "price", "currency", "stock", "ean", "launch_date")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CAD", "AUD")
BAD_KINDS = ("price", "stock", "currency", "sku")
DUPLICATE = "duplicate"
_BAD_PRICES = ("n/a", "TBD", "ten", "12.5O")
_BAD_CURRENCIES = ("XXX", "EURO", "US$", "eur")
_PREFIXES = ("AC", "GLX", "MKR1", "ZZ9", "NORD")
_ADJECTIVES = ("Small", "Large", "Blue", "Steel", "Organic", "Compact", "Deluxe", "Basic")
_NOUNS = ("widget", "kettle", "lamp", "chair", "knife", "mug", "cable", "backpack", "towel")
_EPOCH = dt.date(2000, 1, 1).toordinal()

# The messy file's words: Latin-1 letters and characters only cp1252 has (€ – ’), so reading it as
# Latin-1 or UTF-8 gets names wrong.
_MESSY_ADJECTIVES = ("Kleine", "Große", "Blaue", "Crème", "Öko", "Señor", "Chef’s", "Spar-€")
_MESSY_NOUNS = ("Kaffeemühle", "Wasserkocher", "Lampe", "Stuhl", "Messer", "Tasse", "Kabel", "Smørrebrød-Teller")
_MESSY_BAD_PRICES = ("n/a", "TBD", "zehn", "12,5O")


@dataclass(frozen=True)
class FileKind:
    """How a generated file is written: what someone who knows the file configures a reader with."""

    name: str
    delimiter: str
    encoding: str  # Python's name for it
    decimal_comma: bool  # prices like 1.234,50
    date_formats: tuple[str, ...]  # strptime formats of launch_date in the file
    spans_lines: bool  # quoted values may hold line breaks, so rows and lines differ
    duplicate_keys: bool


CLEAN = FileKind("clean", ",", "utf-8", False, ("%Y-%m-%d",), spans_lines=False, duplicate_keys=False)
MESSY = FileKind("messy", ";", "cp1252", True, ("%d.%m.%Y",), spans_lines=True, duplicate_keys=True)
FILES = {kind.name: kind for kind in (CLEAN, MESSY)}


@dataclass
class Generated:
    """A generated file and what is known about it."""

    path: Path
    kind: FileKind
    rows: int  # records after the header
    bad: dict[int, str]  # line -> why it is bad (a BAD_KINDS value, or DUPLICATE)
    first_copies: list[int] = field(default_factory=list)  # lines of the first copy of each duplicated key

    def expected_bad_lines(self, duplicates: str = "later") -> set[int]:
        """The lines a validator must reject: with duplicate keys judged ``later`` (every copy after
        the first, as bulkimport does) or ``every`` copy (as a uniqueness check over the column does)."""
        lines = set(self.bad)
        return lines | set(self.first_copies) if duplicates == "every" else lines


def ean13(digits12: str) -> str:
    """Twelve digits plus their GS1 check digit."""
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return digits12 + str((10 - weighted % 10) % 10)


def generate_file(kind: FileKind, path: Path, rows: int, bad_share: float = 0.01, seed: int = 7) -> Generated:
    if kind.name == "clean":
        return Generated(path, kind, rows, generate(path, rows, bad_share, seed))
    return generate_messy(path, rows, bad_share, seed)


def generate(path: Path, rows: int, bad_share: float = 0.01, seed: int = 7) -> dict[int, str]:
    """Write the clean file: ``rows`` data rows to ``path``; return {line number: bad kind} of the bad ones.

    Row i (0-based) is on line i + 2. Exactly ``round(rows * bad_share)`` rows are
    bad, chosen and varied by ``seed``.
    """
    rng = random.Random(seed)
    bad_rows = sorted(rng.sample(range(rows), round(rows * bad_share)))
    kinds = {i: rng.choice(BAD_KINDS) for i in bad_rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(HEADER) + "\n")
        block: list[str] = []
        for i in range(rows):
            prefix = _PREFIXES[i % len(_PREFIXES)]
            sku = f"{prefix}-{i:08d}"
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {i % 997}"
            if rng.random() < 0.05:
                name = f'"{name}, pack of {rng.randrange(2, 13)}"'  # a quoted comma, as spreadsheets write it
            price = f"{rng.randrange(0, 100_000) / 100:.2f}"
            currency = rng.choice(CURRENCIES)
            stock = str(rng.randrange(0, 5000))
            ean = ean13(f"{rng.randrange(10**11, 10**12)}") if rng.random() < 0.3 else ""
            launch = dt.date.fromordinal(_EPOCH + rng.randrange(0, 11_000)).isoformat() if rng.random() < 0.5 else ""
            kind = kinds.get(i)
            if kind == "price":
                price = rng.choice(_BAD_PRICES)
            elif kind == "stock":
                stock = str(-rng.randrange(1, 500))
            elif kind == "currency":
                currency = rng.choice(_BAD_CURRENCIES)
            elif kind == "sku":
                sku = f"{prefix.lower()}_{i:08d}"
            block.append(f"{sku},{name},{price},{currency},{stock},{ean},{launch}\n")
            if len(block) >= 10_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))
    return {i + 2: kind for i, kind in kinds.items()}


def _decimal_comma(cents: int) -> str:
    """1234567 -> '12.345,67'."""
    return f"{cents / 100:,.2f}".translate(str.maketrans(",.", ".,"))


def _messy_name(rng: random.Random, i: int) -> str:
    """A name as the file holds it: quoted when it has a `;`, a quote or a line break."""
    name = f"{rng.choice(_MESSY_ADJECTIVES)} {rng.choice(_MESSY_NOUNS)} {i % 997}"
    roll = rng.random()
    if roll < 0.02:
        return f'"{name}\nmit Deckel – {rng.randrange(1, 5)} l"'  # a value over two lines
    if roll < 0.05:
        return f'"{name}; {rng.randrange(2, 13)}er-Pack"'
    if roll < 0.06:
        return f'"{name} ""Profi"""'  # a doubled quote inside a quoted value
    return name


def generate_messy(path: Path, rows: int, bad_share: float = 0.01, seed: int = 7) -> Generated:
    """Write the messy file (see the module's docstring): ``rows`` records after the header.

    ``round(rows * bad_share)`` rows have a bad value (the four kinds of the clean file) and
    ``round(rows * bad_share / 2)`` more repeat the SKU of an earlier valid row (a duplicate key,
    otherwise valid, sometimes with another price); 2% of names span two lines.
    """
    rng = random.Random(seed)
    chosen = rng.sample(range(1, rows), min(rows - 1, round(rows * bad_share) + round(rows * bad_share / 2)))
    bad_count = round(rows * bad_share)
    kinds = {i: rng.choice(BAD_KINDS) for i in chosen[:bad_count]}
    duplicates = set(chosen[bad_count:])
    bad: dict[int, str] = {}
    first_copies: set[int] = set()
    recent: list[tuple[int, list[str]]] = []  # (line, cells) of recent valid rows, to copy keys from
    line = 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="cp1252", newline="") as out:
        out.write(";".join(HEADER) + "\n")
        block: list[str] = []
        for i in range(rows):
            prefix = _PREFIXES[i % len(_PREFIXES)]
            cells = [
                f"{prefix}-{i:08d}",
                _messy_name(rng, i),
                _decimal_comma(rng.randrange(0, 10_000_000) if rng.random() < 0.1 else rng.randrange(0, 100_000)),
                rng.choice(CURRENCIES),
                str(rng.randrange(0, 5000)),
                ean13(f"{rng.randrange(10**11, 10**12)}") if rng.random() < 0.3 else "",
                dt.date.fromordinal(_EPOCH + rng.randrange(0, 11_000)).strftime("%d.%m.%Y")
                if rng.random() < 0.5
                else "",
            ]
            kind = kinds.get(i)
            if kind == "price":
                cells[2] = rng.choice(_MESSY_BAD_PRICES)
            elif kind == "stock":
                cells[4] = str(-rng.randrange(1, 500))
            elif kind == "currency":
                cells[3] = rng.choice(_BAD_CURRENCIES)
            elif kind == "sku":
                cells[0] = f"{prefix.lower()}_{i:08d}"
            elif i in duplicates and recent:
                first_line, original = rng.choice(recent)
                cells = list(original)
                if rng.random() < 0.5:
                    cells[2] = _decimal_comma(rng.randrange(0, 100_000))  # a corrected price, the same key
                kind = DUPLICATE
                first_copies.add(first_line)
            if kind:
                bad[line] = kind
            else:
                recent.append((line, cells))
                if len(recent) > 1000:
                    recent.pop(rng.randrange(len(recent)))
            text = ";".join(cells) + "\n"
            block.append(text)
            line += text.count("\n")
            if len(block) >= 10_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))
    return Generated(path, MESSY, rows, bad, sorted(first_copies))
