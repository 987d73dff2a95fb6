"""Reading a feed file: UTF-8 text, delimited tables with their line numbers, and XML
without document type declarations (so no entity-expansion bombs)."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from storage.source import CatalogSourceError

_DELIMITERS = ("\t", ";", ",")
_MAX_LISTED_COLUMNS = 20
_FIRST_LINE = re.compile(r"[^\r\n]*\S[^\r\n]*")


def read_text(path: Path) -> str:
    """The file as text (a UTF-8 byte order mark dropped); CatalogSourceError when it cannot be."""
    if not path.is_file():
        raise CatalogSourceError(f"feed file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CatalogSourceError(f"cannot read {path}: {error.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CatalogSourceError(
            f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    if not text.strip():
        raise CatalogSourceError(f"{path} is empty")
    return text


def column_list(header: list[str]) -> str:
    """The header for an error message, on one line."""
    names = [name.strip() for name in header]
    shown = ", ".join(names[:_MAX_LISTED_COLUMNS])
    return shown + (f", … ({len(names)} in all)" if len(names) > _MAX_LISTED_COLUMNS else "")


def sniff_delimiter(line: str) -> str:
    """Tab, semicolon or comma: whichever the header line has most of outside quotes."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _first_line(text: str) -> str:
    """The first non-blank line, without splitting the whole (possibly large) text."""
    match = _FIRST_LINE.search(text)
    return match.group() if match else ""


def header_line(text: str) -> list[str]:
    """The first non-blank line's fields (for telling formats apart)."""
    line = _first_line(text)
    return next(csv.reader([line], delimiter=sniff_delimiter(line)), [])


def read_table(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every non-blank record with the file line it starts on. A record with
    more non-empty fields than the header has columns comes back as it is: see ``surplus``."""
    delimiter = sniff_delimiter(_first_line(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    previous = 0
    try:
        for fields in reader:
            start, previous = previous + 1, reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = fields
            else:
                records.append((start, fields))
    except csv.Error as error:
        raise CatalogSourceError(f"{path}: unreadable at line {previous + 1}: {error}") from None
    if header is None:
        raise CatalogSourceError(f"{path} has no header row")
    return header, records


def surplus(header: list[str], fields: list[str]) -> str | None:
    """A problem text when a record has more non-empty fields than there are columns."""
    if any(field.strip() for field in fields[len(header) :]):
        return f"{len(fields)} fields but the header has {len(header)} columns"
    return None


class _NoDoctype(ElementTree.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeFound


class _DoctypeFound(Exception):
    pass


def _prolog_declares(text: str) -> bool:
    """Whether a DOCTYPE or ENTITY declaration comes before the root element."""
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        rest = text[position : position + 9].upper()
        if rest.startswith(("<!DOCTYPE", "<!ENTITY")):
            return True
        for opening, closing in (("<?", "?>"), ("<!--", "-->")):
            if text.startswith(opening, position):
                end = text.find(closing, position + len(opening))
                if end < 0:
                    return False
                position = end + len(closing)
                break
        else:
            return False


def parse_xml(path: Path, text: str) -> ElementTree.Element:
    """The document's root; CatalogSourceError for malformed XML or any DOCTYPE/ENTITY.

    The prolog (before the root element) is scanned for the declarations, so HTML in a
    CDATA description (``<!DOCTYPE html>``) is no reason to refuse; the parser's doctype
    hook refuses anything the scan could have missed."""
    refusal = f"{path}: XML with a DOCTYPE or ENTITY declaration is refused (entity expansion)"
    if _prolog_declares(text):
        raise CatalogSourceError(refusal)
    parser = ElementTree.XMLParser(target=_NoDoctype())
    try:
        parser.feed(text)
        return parser.close()
    except _DoctypeFound:
        raise CatalogSourceError(refusal) from None
    except ElementTree.ParseError as error:
        raise CatalogSourceError(f"{path}: malformed XML ({error})") from None


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]
