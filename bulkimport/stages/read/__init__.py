"""Read a file into chunks of text cells, keeping every record's line and raw text.

A chain of small steps, one module each: detect the encoding (``encoding``, whole
file), weigh the dialects (``weigh``: DuckDB's sniffer on a UTF-8 sample and the usual
alternatives, judged on the header and the first rows), split
into records (``records``: Python's csv module, fed line by line so each record
knows the physical lines it came from; ``xlsx`` for workbooks), map the header to
the dataset's columns (``header``), and cut records into chunks (``chunks``).
Cells stay text: the dataset's schema coerces them later, so one bad cell rejects
one row.
"""

from bulkimport.stages.read.chunks import Chunk, Reject, Source, open_source, raw_lines, read_chunks
from bulkimport.stages.read.dialect import Dialect, sniff
from bulkimport.stages.read.encoding import ENCODINGS, byte_length, detect_encoding, escape_undecodable
from bulkimport.stages.read.header import HeaderMatch, match_header, normalise, refuse_missing
from bulkimport.stages.read.quoting import stray_quote
from bulkimport.stages.read.records import (
    MAX_LINE_CHARS,
    LineBlock,
    Record,
    RowShape,
    named_width,
    text_items,
    text_records,
)
from bulkimport.stages.read.weigh import Detection, detect_dialect, weigh
from bulkimport.stages.read.xlsx import is_xlsx, xlsx_records

__all__ = [
    "ENCODINGS",
    "MAX_LINE_CHARS",
    "Chunk",
    "Detection",
    "Dialect",
    "HeaderMatch",
    "LineBlock",
    "Record",
    "Reject",
    "RowShape",
    "Source",
    "byte_length",
    "detect_dialect",
    "detect_encoding",
    "escape_undecodable",
    "is_xlsx",
    "match_header",
    "named_width",
    "normalise",
    "open_source",
    "raw_lines",
    "read_chunks",
    "refuse_missing",
    "sniff",
    "stray_quote",
    "text_items",
    "text_records",
    "weigh",
    "xlsx_records",
]
