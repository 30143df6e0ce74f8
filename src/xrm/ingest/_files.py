"""What a file is: format, size, sha256, encoding, delimiter, columns; refused early when it lies.

    >>> facts = inspect_file(Path("customers.csv"), mapping)  # doctest: +SKIP
    >>> facts.encoding, facts.delimiter, facts.columns[:2]  # doctest: +SKIP
    ('cp1252', ';', ('kunden_nr', 'vorname'))

One pass over the bytes computes the sha256 (the load's identity) and checks the encoding, so a
Latin-1 byte at the end of a 2 GB file is found before anything is loaded.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from xrm.exceptions import InputError
from xrm.ingest._mapping import FORMATS, Mapping

__all__ = ["FileFacts", "format_of", "inspect_file"]

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_DELIMITERS = (",", ";", "\t", "|")
_CHUNK = 1 << 20
# Bytes that cp1252 leaves undefined: a file holding one of them is read as Latin-1 instead.
_CP1252_HOLES = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


@dataclass
class FileFacts:
    """The facts about one input file that the readers and the report need."""

    path: Path
    format: str
    size: int
    sha256: str
    encoding: str | None = None  # text formats: utf-8 | cp1252 | latin-1
    delimiter: str | None = None  # csv
    columns: tuple[str, ...] = ()  # csv and parquet
    rows_hint: int | None = None  # parquet: rows in the file
    blank_lines: bool = False  # csv: empty lines make row numbers differ from line numbers
    lines: int | None = None  # text formats: physical lines (a last line without a newline counts)
    notes: list[str] = field(default_factory=list)


def format_of(path: Path, mapping: Mapping | None) -> str:
    """The file's format: the mapping's ``format``, else its extension."""
    if mapping is not None and mapping.format:
        return mapping.format
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        if path.suffix.lower() in (".gz", ".zip", ".bz2", ".xz", ".zst"):
            raise InputError(f"{path} is compressed; decompress it first (e.g. gunzip {path.name})")
        raise InputError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}; "
            f"name the file .csv, .jsonl or .parquet, or set format = one of {', '.join(FORMATS)} "
            f"in its mapping"
        )
    return fmt


def inspect_file(path: Path, mapping: Mapping | None) -> FileFacts:
    """Check that ``path`` is what it claims to be and gather its facts (one pass over the bytes)."""
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path (relative to {Path.cwd()})")
    if not path.is_file():
        raise InputError(f"{path} is not a file; give a CSV, JSONL or Parquet file or a manifest.json")
    fmt = format_of(path, mapping)
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path} is empty (0 bytes); export the data again or leave the file out")
    with path.open("rb") as fh:
        head = fh.read(_CHUNK)
    if fmt == "parquet":
        if not head.startswith(b"PAR1"):
            raise InputError(
                f"{path} is not a Parquet file (it does not start with the Parquet magic bytes "
                f"PAR1){_what_it_is(head)}; give it the right extension or set format in its mapping"
            )
        return _parquet_facts(path, size)
    _refuse_binary(path, fmt, head)
    digest, utf8_error, blank, lines = _scan_text(path)
    # Which single-byte encoding only matters for a file that is not UTF-8: look for the bytes
    # that cp1252 leaves undefined then (a second pass, for such files only).
    holes = bool(utf8_error) and _has_cp1252_holes(path)
    encoding = _pick_encoding(path, mapping, utf8_error, holes)
    facts = FileFacts(path, fmt, size, digest, encoding=encoding, blank_lines=blank, lines=lines)
    if encoding != "utf-8" and (mapping is None or mapping.encoding == "auto"):
        facts.notes.append(f"not UTF-8 text: read as {encoding}")
    if fmt == "csv":
        _csv_header(facts, head, mapping)
    return facts


def _what_it_is(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "; it is gzip-compressed (decompress it first)"
    if head.startswith(b"PK\x03\x04"):
        return "; it is a ZIP archive (an Excel .xlsx? export it as CSV)"
    if head.startswith(b"PAR1"):
        return "; it is a Parquet file (name it .parquet)"
    if b"\x00" in head[:4096]:
        return "; it holds binary data"
    return "; it looks like text (CSV or JSONL?)"


def _refuse_binary(path: Path, fmt: str, head: bytes) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} is UTF-16 text; save it as UTF-8 (or cp1252) and load it again")
    if head.startswith((b"PAR1", b"\x1f\x8b", b"PK\x03\x04")) or b"\x00" in head[:65536]:
        raise InputError(
            f"{path} is not a {fmt.upper()} text file{_what_it_is(head)}; give it the right "
            f"extension or set format in its mapping"
        )
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise InputError(f"{path} holds only blank lines; export the data again or leave the file out")


def _scan_text(path: Path) -> tuple[str, str, bool, int]:
    """sha256, the first UTF-8 error ('' when valid), blank lines, the number of lines."""
    sha = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8_error = ""
    blank = False
    lines = 1
    last = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
            if not utf8_error:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    # exc.start counts from the bytes the decoder held back (at most 3): close enough
                    bad = min(max(exc.start, 0), len(chunk) - 1)
                    line = lines + chunk[:bad].count(b"\n")
                    utf8_error = f"byte 0x{chunk[bad]:02x} near line {line:,}"
            if not blank:
                joined = last + chunk
                blank = b"\n\n" in joined or b"\n\r\n" in joined
            lines += chunk.count(b"\n")
            last = chunk[-2:]
    if not utf8_error:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_error = "a cut-off character at the end of the file"
    if last.endswith(b"\n"):
        lines -= 1  # the newline ends the last line; no line follows it
    return sha.hexdigest(), utf8_error, blank, lines


def _has_cp1252_holes(path: Path) -> bool:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if any(h in chunk for h in _CP1252_HOLES):
                return True
    return False


def _pick_encoding(path: Path, mapping: Mapping | None, utf8_error: str, holes: bool) -> str:
    wanted = mapping.encoding if mapping else "auto"
    if wanted == "utf-8" and utf8_error:
        raise InputError(
            f"{path} is not valid UTF-8 ({utf8_error}); set encoding = \"cp1252\" or \"latin-1\" "
            f"(German Windows exports) or \"auto\" in its mapping"
        )
    if wanted != "auto":
        return wanted
    if not utf8_error:
        return "utf-8"
    return "latin-1" if holes else "cp1252"


def _csv_header(facts: FileFacts, head: bytes, mapping: Mapping | None) -> None:
    text = head.decode(facts.encoding or "utf-8", errors="replace").lstrip("\ufeff")
    first = text.splitlines()[0] if text.strip() else ""
    wanted = mapping.delimiter if mapping else "auto"
    delimiter = wanted if wanted != "auto" else _sniff_delimiter(first)
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except (StopIteration, csv.Error) as exc:
        raise InputError(f"{facts.path} line 1: cannot read the CSV header ({exc})") from None
    columns = [c.strip() for c in header]
    problems = []
    for i, name in enumerate(columns, 1):
        if not name:
            problems.append(f"column {i} has no name")
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        problems.append(f"column name(s) {', '.join(map(repr, dupes))} appear more than once")
    if problems:
        raise InputError(
            f"{facts.path} line 1: the header {first[:200]!r} is not usable: {'; '.join(problems)}. "
            f"The first line must name every column once (delimiter {delimiter!r}; set delimiter "
            f"in the mapping if that is wrong)"
        )
    facts.delimiter = delimiter
    facts.columns = tuple(columns)


def _sniff_delimiter(line: str) -> str:
    counts = {d: _count_outside_quotes(line, d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties keep the order: , before ;
    return best if counts[best] else ","


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def _parquet_facts(path: Path, size: int) -> FileFacts:
    import pyarrow.parquet as pq

    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(
            f"{path} is not a readable Parquet file ({exc}); write it again or export CSV instead"
        ) from None
    return FileFacts(
        path, "parquet", size, sha.hexdigest(), columns=tuple(schema.names), rows_hint=meta.num_rows
    )
