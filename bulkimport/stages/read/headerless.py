"""A file with no header line: its first line is data in the dataset's column order.

Offered in the preview and refused in the worker with the option's name, never
guessed: a first line that happens to pass the checks could still be a header the
dataset does not know.
"""

from __future__ import annotations

import pandas as pd

from bulkimport.datasets import Dataset
from bulkimport.errors import FileRefused
from bulkimport.stages.read.records import PADDING, RowShape


def looks_like_data(cells: list[str] | None, dataset: Dataset) -> bool:
    """True when ``cells`` pass the dataset's checks as one row in the dataset's column order."""
    from bulkimport.stages.validate import validate_chunk  # validate reads this package's Reject

    columns = dataset.columns
    if not cells or RowShape.of(columns).problem(cells) is not None:
        return False
    values = {c: [cells[i].strip(PADDING) or None] for i, c in enumerate(columns)}
    frame = pd.DataFrame(values, index=pd.Index([1], name="line"), dtype=object)
    checked = validate_chunk(dataset, frame, {1: ""})
    return not checked.rejects and len(checked.valid) == 1


def refuse_headerless(file_name: str, dataset: Dataset) -> None:
    raise FileRefused(
        f"{file_name}: the first line is not a header but a row of data: its values pass the dataset's checks "
        f"as columns {', '.join(dataset.columns)}, in that order. If the file has no header line, submit it "
        "with --no-header (columns in dataset order; --columns a,b,... names them in the file's order), "
        "or choose 'no header: columns in dataset order' in the upload form."
    )
