"""A products CSV with a known share of bad rows, the same for the same seed.

Bad rows come in four kinds, so every contender has to really coerce and
check: a price that is not a number, a negative stock, a currency outside the
list, a SKU that breaks the pattern. Every other row is valid for the
products dataset (unique SKUs, prices with two decimals, EAN-13s with their
check digit, ISO dates), so the bad lines are known exactly.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

HEADER = "sku,name,price,currency,stock,ean,launch_date"
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CAD", "AUD")
BAD_KINDS = ("price", "stock", "currency", "sku")
_BAD_PRICES = ("n/a", "TBD", "ten", "12.5O")
_BAD_CURRENCIES = ("XXX", "EURO", "US$", "eur")
_PREFIXES = ("AC", "GLX", "MKR1", "ZZ9", "NORD")
_ADJECTIVES = ("Small", "Large", "Blue", "Steel", "Organic", "Compact", "Deluxe", "Basic")
_NOUNS = ("widget", "kettle", "lamp", "chair", "knife", "mug", "cable", "backpack", "towel")
_EPOCH = dt.date(2000, 1, 1).toordinal()


def ean13(digits12: str) -> str:
    """Twelve digits plus their GS1 check digit."""
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits12))
    return digits12 + str((10 - weighted % 10) % 10)


def generate(path: Path, rows: int, bad_share: float = 0.01, seed: int = 7) -> dict[int, str]:
    """Write ``rows`` data rows to ``path``; return {line number: bad kind} of the bad ones.

    Line 1 is the header, so row i (0-based) is on line i + 2. Exactly
    ``round(rows * bad_share)`` rows are bad, chosen and varied by ``seed``.
    """
    rng = random.Random(seed)
    bad_rows = sorted(rng.sample(range(rows), round(rows * bad_share)))
    kinds = {i: rng.choice(BAD_KINDS) for i in bad_rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
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
