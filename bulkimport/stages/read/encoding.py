"""The file's encoding: detected on the whole file; undecodable bytes kept as lone surrogates."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from bulkimport.errors import FileRefused

_UNDECODABLE = re.compile("[\udc00-\udcff]")
BYTES = "bulkimport-bytes"  # the codec error handler below


def _keep_bad_bytes(error: UnicodeError):
    """Like surrogateescape (a bad byte b becomes U+DC00+b and back), for every codec.

    surrogateescape refuses bytes below 0x80, which a damaged UTF-16 file has.
    """
    if isinstance(error, UnicodeDecodeError):
        return "".join(chr(0xDC00 + b) for b in error.object[error.start : error.end]), error.end
    if isinstance(error, UnicodeEncodeError):
        text = error.object[error.start : error.end]
        if all(0xDC00 <= ord(c) <= 0xDCFF for c in text):
            return bytes(ord(c) - 0xDC00 for c in text), error.end
    raise error


codecs.register_error(BYTES, _keep_bad_bytes)


def byte_length(text: str, codec: str) -> int:
    """Bytes ``text`` took in the file: each kept bad byte is one byte (UTF-16's encoder
    will not write a lone byte back, so they are counted, not encoded)."""
    clean = _UNDECODABLE.sub("", text)
    return len(clean.encode(codec)) + len(text) - len(clean)


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_BOM_OF = {
    "utf-8": codecs.BOM_UTF8,
    "utf-8-sig": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "cp1252", "latin-1")


def detect_encoding(path: Path) -> tuple[str, int]:
    """The file's encoding and BOM length, judged on the whole file.

    A BOM decides. Otherwise UTF-8 if the bytes are UTF-8 (a few invalid
    sequences among many valid ones still count: those rows are rejected
    later); else Windows-1252, or Latin-1 for bytes 1252 leaves undefined.
    """
    with open(path, "rb") as stream:
        head = stream.read(4)
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name, len(bom)
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        invalid = multibyte = 0
        cp1252_undefined = False
        while block := stream.read(1 << 20):
            if block.isascii():
                continue
            text = decoder.decode(block)
            bad = len(_UNDECODABLE.findall(text))
            invalid += bad
            multibyte += len(text) - len(text.encode("ascii", "ignore")) - bad  # non-ASCII characters, counted in C
            cp1252_undefined |= any(b in block for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"))
    if invalid == 0 or multibyte > invalid:
        return "utf-8", 0
    return ("latin-1" if cp1252_undefined else "cp1252"), 0


# C0 control bytes that text files do not hold (tab, LF, FF, CR, SUB and ESC excepted).
_BINARY_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0c\r\x1a\x1b")


def _looks_binary(path: Path, encoding: str) -> bool:
    if encoding.startswith("utf-16"):
        return False
    with open(path, "rb") as stream:
        head = stream.read(8192)
    # Count every control byte, not only NULs: compressed data (an image, an
    # archive) has ~0.4% NULs but ~10% control bytes; text has next to none.
    controls = len(head) - len(head.translate(None, _BINARY_BYTES))
    return controls > max(4, len(head) // 100)


def escape_undecodable(text: str) -> str:
    """Show bytes the encoding could not decode as \\xNN, so the text can be stored and displayed."""
    return _UNDECODABLE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def _check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise FileRefused(f"unknown encoding {name!r}; try one of {', '.join(ENCODINGS)}") from None


# ---------------------------------------------------------------- records


def _size_codec(encoding: str) -> str:
    """The codec that measures text in the file's bytes: utf-8-sig would count a BOM for every line."""
    return "utf-8" if encoding == "utf-8-sig" else encoding
