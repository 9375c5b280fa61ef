"""Request bodies to a score matrix, and scores to response bodies: pure functions, no HTTP.

Content types are those SageMaker sends: `application/json` (one customer, or `{"instances": [...]}`),
`text/csv` (rows of recency,frequency,monetary, header optional) and `application/jsonlines` (one
customer per line, as batch transform splits files). The response type follows Accept; without one
(or `*/*`) it is the request's type. Bad input raises `DataError` naming the record and field
(400); an unknown Content-Type raises `UnsupportedContentType` (415), an Accept we cannot produce
`NotAcceptable` (406).

Large batches stay bounded: CSV is parsed by numpy in pieces of 256 KiB into one float matrix
(the row-by-row parser only runs to name the first bad cell), and `respond` scores and writes the
answer in chunks of CHUNK_ROWS rows, checking a cancellation flag between chunks (`Cancelled`) and
stopping with `ResponseTooLarge` as soon as the answer passes the response limit, so neither a
refused answer nor a timed-out request costs more than one chunk of extra work.
"""

from __future__ import annotations

import array
import csv
import io
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from pydantic import ValidationError

from rfm.errors import DataError, RfmError, short_repr
from rfm.serving.records import (
    FIELDS,
    BatchRequest,
    CustomerRecord,
    check_matrix,
    describe_validation_error,
    plain_record,
    validate_record,
    validate_records,
)

try:  # a faster JSON codec when installed; the standard library otherwise
    import orjson

    def _loads(data: bytes | str) -> object:
        return orjson.loads(data)

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

    def _number_columns(values: np.ndarray) -> list[list[bytes]] | None:
        """Each column of a float matrix as JSON numbers, written by orjson exactly as it writes the
        same Python floats (one call per chunk instead of a dict per row)."""
        if not len(values):
            return None
        text = orjson.dumps(np.ascontiguousarray(values.T), option=orjson.OPT_SERIALIZE_NUMPY)
        return [column.split(b",") for column in text[2:-2].split(b"],[")]

    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - exercised when orjson is absent
    def _reject_constant(name: str) -> NoReturn:
        raise ValueError(f"{name} is not allowed")

    def _loads(data: bytes | str) -> object:
        return json.loads(data, parse_constant=_reject_constant)

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()

    def _number_columns(values: np.ndarray) -> list[list[bytes]] | None:
        return None  # the per-row objects below

    _JSON_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"
_ALIASES = {
    JSON: JSON, CSV: CSV, JSONLINES: JSONLINES,
    "application/x-jsonlines": JSONLINES, "application/jsonl": JSONLINES, "application/x-ndjson": JSONLINES,
}
CONTENT_TYPES: tuple[str, ...] = (JSON, CSV, JSONLINES)


class UnsupportedContentType(RfmError):
    """The request body's Content-Type is not one the server reads (415)."""


class NotAcceptable(RfmError):
    """No response type in Accept is one the server writes (406)."""


class ResponseTooLarge(RfmError):
    """The answer would be over the response limit (413); the message says how many rows fit."""


class Cancelled(Exception):
    """The request's cancellation flag was set (it timed out): scoring stopped between chunks."""

    def __init__(self, done: int, total: int, what: str = "rows scored") -> None:
        super().__init__(f"stopped after {done:,} of {total:,} {what}")
        self.done = done
        self.total = total


# Rows scored and written per step of `respond` (and between cancellation checks): a few ms of work.
CHUNK_ROWS = 16_384
# CSV bytes numpy parses per step of `decode` (between cancellation checks; numpy holds the GIL that long).
CSV_PIECE_BYTES = 1 << 18


@dataclass
class Batch:
    """Parsed input: the (n, 3) matrix, the records as given (for `input_data`), one customer or many."""

    values: np.ndarray
    inputs: list[dict[str, int | float]] | None
    single: bool

    def input_dicts(self, start: int = 0, stop: int | None = None) -> list[dict[str, int | float]]:
        """The records of rows start:stop as given (CSV: built per slice, only for a JSON answer)."""
        if self.inputs is not None:
            return self.inputs[start:stop]
        return [dict(zip(FIELDS, row, strict=True)) for row in self.values[start:stop].tolist()]


def media_type(header: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    return (header or "").split(";", 1)[0].strip().lower()


def request_type(header: str | None) -> str:
    """The canonical content type of a request, or UnsupportedContentType."""
    kind = _ALIASES.get(media_type(header))
    if kind is None:
        got = f"{header!r}" if header else "no Content-Type"
        raise UnsupportedContentType(f"unsupported content type {got}: send {', '.join(CONTENT_TYPES)}")
    return kind


def response_type(accept: str | None, request_kind: str) -> str:
    """The response type Accept asks for (by q-value, then order); the request's type for */*."""
    if not accept or not accept.strip():
        return request_kind
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        pieces = part.split(";")
        kind = pieces[0].strip().lower()
        q = 1.0
        for param in pieces[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and q > 0:
            choices.append((-q, position, kind))
    for _, _, kind in sorted(choices):
        if kind in ("*/*", "*"):
            return request_kind
        if kind == "application/*":
            return request_kind if request_kind != CSV else JSON
        if kind == "text/*":
            return CSV
        if kind in _ALIASES:
            return _ALIASES[kind]
    raise NotAcceptable(f"cannot answer in {accept!r}: accept one of {', '.join(CONTENT_TYPES)}")


def decode(body: bytes, kind: str, cancel: threading.Event | None = None) -> Batch:
    """Parse and validate a request body of a canonical content type (`cancel`: see `respond`)."""
    if not body.strip():
        raise DataError("empty request body: send one customer {\"recency\", \"frequency\", \"monetary\"} or more")
    if kind == JSON:
        return _decode_json(body)
    if kind == CSV:
        values = _csv_fast(body, cancel)
        if values is not None:
            return Batch(values, None, single=False)
        return _decode_csv(body)
    return _decode_jsonlines(body)


def _decode_json(body: bytes) -> Batch:
    try:
        data = _loads(body)
    except _JSON_ERRORS as exc:
        raise DataError(f"malformed JSON: {exc}") from None
    if isinstance(data, dict) and "instances" in data:
        try:
            records = BatchRequest.model_validate(data).instances
        except ValidationError as exc:
            raise DataError(describe_validation_error(exc)) from None
        return _from_records(records, single=False)
    if isinstance(data, dict):
        record = plain_record(data)  # one valid customer without pydantic: the per-request hot path
        if record is not None:
            values = np.array([[record["recency"], record["frequency"], record["monetary"]]], dtype="float64")
            return Batch(values, [record], single=True)
        return _from_records([validate_record(data)], single=True)
    raise DataError(f"expected a JSON object (one customer) or {{\"instances\": [...]}}, got {type(data).__name__}")


def _decode_jsonlines(body: bytes) -> Batch:
    rows: list[object] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(_loads(line))
        except _JSON_ERRORS as exc:
            raise DataError(f"record {len(rows)} (line {number}): malformed JSON: {exc}") from None
    return _from_records(validate_records(rows), single=False)


def _from_records(records: Sequence[CustomerRecord], *, single: bool) -> Batch:
    values = np.array([r.row() for r in records], dtype="float64").reshape(-1, 3)
    return Batch(values, [r.model_dump() for r in records], single)


# The only bytes of CSV data rows numpy parses here; any other (a Unicode space numpy would strip, `_`,
# letters) sends the body to the strict row-by-row parser, which accepts or names the bad cell.
_CSV_FAST_BYTES = b"0123456789+-.eE, \t\r\n"


def _csv_fast(body: bytes, cancel: threading.Event | None) -> np.ndarray | None:
    """The (n, 3) matrix of a well-formed CSV body, parsed by numpy piece by piece; None when numpy
    refuses anything (quotes, a bad cell, a blank first line...) or a value breaks the record rules:
    then `_decode_csv` parses it again row by row, to name the first bad record exactly as always."""
    if b'"' in body:
        return None
    start = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    first_end = body.find(b"\n", start)
    first_end = len(body) if first_end < 0 else first_end + 1
    try:
        first = body[start:first_end].decode().strip()
    except UnicodeDecodeError:
        return None
    if not first:
        return None
    order = [0, 1, 2]
    cells = first.split(",")
    if _is_header(cells):
        try:
            order = _header_order(cells, 1)
        except DataError:
            return None
        start = first_end
    if body[start:].translate(None, _CSV_FAST_BYTES):
        return None  # anything but plain ASCII numbers (Unicode spaces numpy would skip): row by row
    parts: list[np.ndarray] = []
    while start < len(body):
        if cancel is not None and cancel.is_set():
            raise Cancelled(start, len(body), "bytes parsed")
        end = body.find(b"\n", min(start + CSV_PIECE_BYTES, len(body)) - 1)
        end = len(body) if end < 0 else end + 1
        piece = body[start:end]
        start = end
        if not piece.strip():
            continue
        try:
            part = np.loadtxt(io.BytesIO(piece), delimiter=",", dtype="float64", comments=None, ndmin=2,
                              encoding="utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        if part.shape[1] != 3:
            return None
        parts.append(part)
    if not parts:
        return None
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    del parts
    if order != [0, 1, 2]:
        values = values[:, np.argsort(order)]
    bad = ~np.isfinite(values)
    bad[:, :2] |= values[:, :2] < 0  # recency, frequency (NON_NEGATIVE)
    if bad.any():
        return None
    return np.ascontiguousarray(values)


# A CSV value: a plain ASCII decimal number (optional sign, digits, point, exponent), or nan/inf, which the
# record rules then refuse as not finite. Not Python's float(): that also takes `1_000`, digits of other
# scripts (Arabic-Indic, fullwidth) and surrounding Unicode spaces.
_CSV_NUMBER = re.compile(r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)[ \t]*",
                         re.IGNORECASE)


def csv_number(cell: str) -> float | None:
    """The value of one CSV cell, or None when it is not a plain number (see _CSV_NUMBER). Pure."""
    return float(cell) if _CSV_NUMBER.fullmatch(cell) else None


def _decode_csv(body: bytes) -> Batch:
    """Row by row: names the first record that is not three numbers (line numbers count every line).

    Strict: lines end at \n (or \r\n) only, so U+2028 and other Unicode line breaks stay inside a cell
    (and make it a bad value); a quote must be closed on its line; a quoted cell is text (as
    csv.QUOTE_NONNUMERIC reads it), so values are unquoted numbers and only the header may be quoted."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError("CSV body is not UTF-8 text") from None
    lines = text.split("\n")
    del text
    order = [0, 1, 2]
    flat = array.array("d")  # the values only: no per-row lists of strings kept
    line_numbers = array.array("q")
    header_seen = False
    for number, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        quoted: list[bool] = [False] * (line.count(",") + 1)
        if '"' in line:
            cells, quoted = _quoted_cells(line, len(line_numbers), number)
        else:
            cells = line.split(",")
        if not line_numbers and not header_seen and _is_header(cells):
            order = _header_order(cells, number)
            header_seen = True
            continue
        if len(cells) != 3:
            raise DataError(f"record {len(line_numbers)} (line {number}): expected 3 values "
                            f"(recency,frequency,monetary), got {len(cells)}")
        for j, cell in enumerate(cells):
            value = None if quoted[j] else csv_number(cell)
            if value is None:
                what = "an unquoted number" if quoted[j] else "a number"
                raise DataError(f"record {len(line_numbers)} (line {number}): field {FIELDS[order[j]]!r} must be "
                                f"{what}, got {short_repr(cell.strip(), 40)}")
            flat.append(value)
        line_numbers.append(number)
    if not line_numbers:
        raise DataError("CSV body has no data rows (expected recency,frequency,monetary per line)")
    del lines
    values = np.frombuffer(flat, dtype="float64").reshape(-1, 3)
    values = values[:, np.argsort(order)] if order != [0, 1, 2] else values
    check_matrix(values, line_of=line_numbers)
    return Batch(np.array(values, dtype="float64", order="C"), None, single=False)


def _quoted_cells(line: str, record: int, number: int) -> tuple[list[str], list[bool]]:
    """The cells of a line holding quotes, and which were quoted; a quote left open is a DataError."""
    try:
        cells = next(csv.reader([line], strict=True))
    except csv.Error:
        raise DataError(f"record {record} (line {number}): a quote is not closed (or is followed by text) "
                        f"on this line: {short_repr(line, 60)}") from None
    quoted = [cell.strip().startswith('"') for cell in line.split(",")] if len(line.split(",")) == len(cells) \
        else [True] * len(cells)
    return cells, quoted


def _is_header(cells: list[str]) -> bool:
    return all(csv_number(cell) is None for cell in cells)


def _header_order(cells: list[str], number: int) -> list[int]:
    """Column positions of a header naming recency, frequency, monetary (any order)."""
    names = [c.strip().strip('"').lower() for c in cells]
    if sorted(names) != sorted(FIELDS):
        raise DataError(f"line {number}: CSV header must name recency, frequency, monetary, got {','.join(names)[:80]}")
    return [FIELDS.index(n) for n in names]


# --- responses ---------------------------------------------------------------------------------------
def encode(batch: Batch, ids: np.ndarray, names: Sequence[str], version: str, kind: str) -> bytes:
    """The response body: seed-format objects (JSON, JSON Lines) or `cluster,segment` lines (CSV).

    `names[i]` is the segment name of cluster id i, with the "not segmented" name last (id -1)."""
    return respond(batch, lambda _values, start, stop: ids[start:stop], Answers(names, version), kind,
                   total=len(ids) if kind == CSV else None)


class Answers:
    """What every answer of one model repeats, written once: the segment names and the model version,
    CSV lines and JSON row prefixes by cluster id (`names[i]` for id i, the "not segmented" name last,
    id -1, so a list indexed by id -1 finds it)."""

    def __init__(self, names: Sequence[str], version: str) -> None:
        self.names = list(names)
        self.version = version
        ids = [*range(len(names) - 1), -1]
        self.csv_lines = [f"{i},{_csv_cell(name)}\n".encode() for i, name in zip(ids, names, strict=True)]
        # CSV input answered as JSON: rows from a byte template per cluster, no dict per row.
        self.prefixes = [b'{"cluster":%d,"segment":%s,"input_data":{"recency":' % (i, _dumps(name))
                         for i, name in zip(ids, names, strict=True)]
        self.template = (b'%s%s,"frequency":%s,"monetary":%s},"model_version":'
                         + _dumps(version).replace(b"%", b"%%") + b"}")


def respond(batch: Batch, predict: Callable[[np.ndarray, int, int], np.ndarray], answers: Answers, kind: str, *,
            limit: int | None = None, cancel: threading.Event | None = None, total: int | None = None) -> bytes:
    """Score `batch` and write its answer chunk by chunk: `predict(values[start:stop], start, stop)` gives
    the cluster ids of a chunk. Stops with `Cancelled` when `cancel` is set (checked between chunks) and
    with `ResponseTooLarge` as soon as the answer passes `limit` bytes (the message estimates, from the
    rows written so far, how many rows fit in one answer of this type and of the smaller CSV)."""
    n = len(batch.values) if total is None else total
    names, version, lines = answers.names, answers.version, answers.csv_lines
    prefixes, template = answers.prefixes, answers.template
    opening, separator, closing = _framing(kind, batch.single)
    pieces: list[bytes] = [opening]
    size = len(opening) + len(closing)
    for start in range(0, max(n, 1), CHUNK_ROWS):
        if cancel is not None and cancel.is_set():
            raise Cancelled(start, n)
        stop = min(start + CHUNK_ROWS, n)
        id_list = predict(batch.values[start:stop], start, stop).tolist()
        columns = _number_columns(batch.values[start:stop]) if batch.inputs is None and kind != CSV else None
        if kind == CSV:
            piece = b"".join([lines[i] for i in id_list])
        elif columns is not None and not batch.single:
            rows = [template % t for t in zip([prefixes[i] for i in id_list], *columns, strict=True)]
            piece = b"\n".join(rows) + b"\n" if kind == JSONLINES else b",".join(rows)
            del rows, columns
        else:
            results = [{"cluster": i, "segment": names[i], "input_data": inp, "model_version": version}
                       for i, inp in zip(id_list, batch.input_dicts(start, stop), strict=True)]
            if kind == JSONLINES:
                piece = b"".join([_dumps(r) + b"\n" for r in results])
            elif batch.single:
                piece = _dumps(results[0])
            else:
                piece = _dumps(results)[1:-1]
            del results
        if separator and start and piece:
            pieces.append(separator)
            size += len(separator)
        pieces.append(piece)
        size += len(piece)
        if limit is not None and size > limit:
            raise ResponseTooLarge(_too_large(kind, n, stop, size, id_list, lines, limit))
    pieces.append(closing)
    return b"".join(pieces)


def _framing(kind: str, single: bool) -> tuple[bytes, bytes, bytes]:
    """What goes before, between and after the chunks of an answer."""
    if kind == JSON and not single:
        return b'{"predictions":[', b",", b"]}"
    return b"", b"", b""


def _too_large(kind: str, n: int, written: int, size: int, last_ids: list[int], lines: Sequence[bytes],
               limit: int) -> str:
    """One line: the answer is over the limit; about how many rows fit (this type, and as CSV)."""
    per_row = size / written
    fit = max(1, int(limit / per_row))
    message = (f"the answer to these {n:,} rows would be over SageMaker's 6 MB response limit ({limit:,} bytes): "
               f"about {fit:,} rows fit in one {kind} answer (~{per_row:.0f} bytes a row)")
    if kind != CSV:
        csv_row = sum(len(lines[i]) for i in last_ids) / max(1, len(last_ids))
        message += f"; text/csv answers are smaller (Accept: text/csv, about {int(limit / csv_row):,} rows)"
    return message + "; split the batch, or use SageMaker batch transform for bulk scoring"


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([text])
        return buffer.getvalue()
    return text


def dumps(obj: object) -> bytes:
    """JSON bytes for other responses (errors, /model)."""
    return _dumps(obj)
