"""A brand's product catalogue: one row per SKU."""

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from bulkimport.datasets import Dataset

CURRENCIES = ("EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "JPY", "CAD", "AUD")
SKU_PATTERN = r"^[A-Z0-9]{2,8}-[A-Z0-9]{2,12}$"


class Products(pa.DataFrameModel):
    sku: Series[str] = pa.Field(
        str_matches=SKU_PATTERN, description="Stock keeping unit, e.g. ACME-1001", metadata={"example": "ACME-1001"}
    )
    name: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 200})
    price: Series[float] = pa.Field(ge=0, le=9_999_999_999.99, description="Unit price, at most 2 decimals")
    currency: Series[str] = pa.Field(isin=CURRENCIES)
    stock: Series[int] = pa.Field(ge=0)
    ean: Series[str] | None = pa.Field(nullable=True, description="EAN-13 barcode with check digit")
    launch_date: Series[pd.Timestamp] | None = pa.Field(nullable=True)

    @pa.check("price", name="at_most_2_decimals", error="price has more than 2 decimals")
    def price_has_two_decimals(cls, price: Series[float]) -> Series[bool]:
        # Compare with the nearest whole number of cents, relative to the size: a double
        # holds ~15 digits, so a fixed tolerance would reject large prices with 2 decimals,
        # the dataset's own maximum 9999999999.99 among them.
        cents = price * 100
        return (cents - cents.round()).abs() <= 1e-6 + 1e-15 * cents.abs()

    @pa.check("ean", name="ean13_check_digit", error="not a valid EAN-13 (13 digits, GS1 check digit)")
    def ean_is_valid(cls, ean: Series[str]) -> Series[bool]:
        ok = pd.Series(True, index=ean.index)
        present = ean.notna()
        if present.any():  # vectorised: a Python call per value would cost a tenth of all validation
            codes = ean[present].astype(str)
            well_formed = codes.str.fullmatch(r"[0-9]{13}")
            digits = np.zeros((len(codes), 13), dtype=np.int64)
            if well_formed.any():
                digits[well_formed.to_numpy()] = np.frombuffer(
                    "".join(codes[well_formed]).encode("ascii"), dtype=np.uint8
                ).reshape(-1, 13) - ord("0")
            weighted = digits[:, :12] @ np.array([1, 3] * 6)
            ok[present] = well_formed.to_numpy() & ((10 - weighted % 10) % 10 == digits[:, 12])
        return ok

    @pa.check("launch_date", name="plausible_date", error="launch_date outside 1900-01-01..2100-12-31")
    def launch_date_is_plausible(cls, d: Series[pd.Timestamp]) -> Series[bool]:
        return d.isna() | d.between(pd.Timestamp(dt.date(1900, 1, 1)), pd.Timestamp(dt.date(2100, 12, 31)))

    class Config:
        coerce = True
        strict = False


# The custom checks above, as SQL for the staging fast path (bulkimport/stages/compile.py).
_EAN_SUM = " + ".join(f"{3 if i % 2 else 1} * CAST(substr({{value}}, {i + 1}, 1) AS INTEGER)" for i in range(12))
SQL_CHECKS = {
    "at_most_2_decimals": "abs({value} * 100 - round({value} * 100)) <= 1e-6 + 1e-15 * abs({value} * 100)",
    "ean13_check_digit": "CASE WHEN regexp_full_match({value}, '[0-9]{13}') "
    f"THEN (10 - ({_EAN_SUM}) % 10) % 10 = CAST(substr({{value}}, 13, 1) AS INTEGER) ELSE false END",
    "plausible_date": "{value} BETWEEN TIMESTAMP '1900-01-01' AND TIMESTAMP '2100-12-31'",
}

DATASET = Dataset(
    name="products",
    description="A brand's product catalogue, keyed by (brand, sku).",
    model=Products,
    key=("sku",),
    sql_types={
        "sku": "VARCHAR",
        "name": "VARCHAR",
        "price": "DECIMAL(12,2)",
        "currency": "VARCHAR",
        "stock": "BIGINT",
        "ean": "VARCHAR",
        "launch_date": "DATE",
    },
    required=("sku", "name", "price", "currency", "stock"),
    aliases={
        "sku": ("article", "article number", "item code"),
        "name": ("product name", "title", "description"),
        "price": ("unit price", "price eur", "price (eur)", "net price"),
        "currency": ("ccy", "currency code"),
        "stock": ("qty", "quantity", "on hand"),
        "ean": ("barcode", "gtin", "ean13"),
        "launch_date": ("launch", "release date", "available from"),
    },
    decimal_comma=True,
    date_formats=("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"),
    sql_checks=SQL_CHECKS,
)
