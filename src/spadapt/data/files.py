"""Readers for user files: CSV, TSV, JSON Lines and Parquet, chosen by extension.

Each reader returns a `Table`: the column names and one `Record` per row with its 1-based
line number, and a ``problem`` where the row cannot be parsed (bad UTF-8, wrong number of
fields, not a JSON object). Bytes are decoded line by line, so one bad line does not hide
the others. Lines are the physical lines an editor shows, so that every ``file:line`` is the
one ``sed -n Np FILE`` prints (see `_decode_lines`). What the values must look like
(non-empty text, a label) is checked in ``validate.py``, not here.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError

FORMATS = {".csv": "CSV", ".tsv": "TSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines",
           ".parquet": "Parquet"}


@dataclass
class Record:
    """One row: ``values`` maps column name to value; ``problem`` says why it is unreadable."""

    line: int
    values: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class Table:
    path: str  # as the user gave it, so that messages point at the file they know
    columns: list[str]
    records: list[Record]
    has_header: bool  # CSV/TSV: the first line names the columns


def read_table(path: str, columns: Collection[str] = ()) -> Table:
    """Read every row of ``path``. ``columns``: those the caller needs; a Parquet file reads
    only these (the others are only listed), text formats parse every field anyway."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        supported = ", ".join(f"{ext} ({name})" for ext, name in FORMATS.items())
        raise DataError(f"{path}: unknown file type {suffix or '(no extension)'!r}; "
                        f"supported: {supported}")
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file")
    if suffix == ".parquet":
        return _read_parquet(path, columns)
    lines, bad = _decode_lines(path)
    if suffix == ".jsonl" or suffix == ".ndjson":
        return _read_jsonl(path, lines, bad)
    return _read_delimited(path, lines, bad, "," if suffix == ".csv" else "\t")


def _decode_lines(path: str) -> tuple[list[str], dict[int, str]]:
    r"""The file's physical lines decoded as UTF-8 one by one (a leading BOM dropped), each
    ending in ``\n``, and for each line that is not valid UTF-8, its number → the reason.

    Line endings are found as vim finds them: a file with any ``\n`` has lines ending in
    ``\n`` or ``\r\n``, and a lone ``\r`` inside a line (text from web forms, ticket
    systems and spreadsheets holds them, often in unquoted fields) is part of the row, read
    as a space; a file with no ``\n`` has old-Mac ``\r`` line endings. A line break inside
    a quoted CSV field is thus read as ``\n`` whatever the file's line endings."""
    raw = Path(path).read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path} is UTF-16 encoded; save it as UTF-8 and try again")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    if not raw.strip():
        raise DataError(f"{path} is empty")
    chunks = raw.split(b"\n" if b"\n" in raw else b"\r")
    if not chunks[-1]:
        chunks.pop()  # the file ends with a line ending: no line after it
    lines: list[str] = []
    bad: dict[int, str] = {}
    for number, chunk in enumerate(chunks, start=1):
        # The \r of \r\n goes; a lone \r becomes a space, byte for byte (offsets stay right).
        chunk = chunk.removesuffix(b"\r").replace(b"\r", b" ")
        try:
            lines.append(chunk.decode("utf-8") + "\n")
        except UnicodeDecodeError as err:
            bad[number] = (f"not valid UTF-8 (byte 0x{chunk[err.start]:02x} at byte "
                           f"{err.start + 1} of the line); save the file as UTF-8")
            lines.append(chunk.decode("utf-8", errors="replace") + "\n")
    return lines, bad


def _read_delimited(path: str, lines: list[str], bad: dict[int, str], delimiter: str) -> Table:
    kind = "CSV" if delimiter == "," else "TSV"
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[Record] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problem = bad.get(start) or f"malformed {kind} ({err})"
            if header is None:
                raise DataError(f"{path}:{start}: cannot read the header: {problem}") from None
            records.append(Record(start, problem=problem))
            continue
        if not fields:
            continue  # a blank line is no row
        problem = next((bad[n] for n in range(start, reader.line_num + 1) if n in bad), None)
        if header is None:
            if problem:
                raise DataError(f"{path}:{start}: the header line is {problem}")
            header = _header(path, [name.strip() for name in fields])
        elif problem:
            records.append(Record(start, problem=problem))
        elif len(fields) != len(header):
            records.append(Record(start, problem=f"has {len(fields)} fields, the header has "
                                                 f"{len(header)} ({', '.join(header)})"))
        else:
            records.append(Record(start, dict(zip(header, fields, strict=True))))
    return Table(path, header or [], records, has_header=True)


def _header(path: str, names: list[str]) -> list[str]:
    if "" in names:
        raise DataError(f"{path}:1: the header has an empty column name "
                        f"(column {names.index('') + 1}); name every column")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}:1: the header repeats the column name(s) {repeated}")
    return names


def _read_jsonl(path: str, lines: list[str], bad: dict[int, str]) -> Table:
    columns: dict[str, None] = {}  # ordered set: keys in order of first appearance
    records: list[Record] = []
    for number, line in enumerate(lines, start=1):
        if number in bad:
            records.append(Record(number, problem=bad[number]))
            continue
        if not line.strip():
            continue  # a blank line is no row
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            records.append(Record(number, problem=f"invalid JSON ({err.msg} at column "
                                                  f"{err.colno})"))
            continue
        if not isinstance(value, dict):
            records.append(Record(number, problem=f"not a JSON object (got {json_type(value)})"))
            continue
        columns.update(dict.fromkeys(value))
        records.append(Record(number, value))
    return Table(path, list(columns), records, has_header=False)


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _read_parquet(path: str, columns: Collection[str]) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs the package pyarrow; install it with: "
                        "pip install pyarrow") from None
    try:
        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
        wanted = [name for name in names if name in set(columns)]
        records: list[Record] = []
        for batch in parquet.iter_batches(columns=wanted):
            data = {name: batch.column(name).to_pylist() for name in wanted}
            for i in range(batch.num_rows):
                records.append(_parquet_record(len(records) + 1,
                                               {name: data[name][i] for name in wanted}))
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path} is not a readable Parquet file: {err}") from None
    return Table(path, names, records, has_header=False)


def _parquet_record(row: int, values: dict[str, Any]) -> Record:
    """Binary (bytes) values are decoded here, so a bad one is reported for its row."""
    for name, value in values.items():
        if isinstance(value, bytes):
            try:
                values[name] = value.decode("utf-8")
            except UnicodeDecodeError as err:
                return Record(row, problem=f"{name!r} is not valid UTF-8 (byte "
                                           f"0x{value[err.start]:02x} at byte {err.start + 1})")
    return Record(row, values)
