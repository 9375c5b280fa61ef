"""Request bodies to a score matrix, and scores to response bodies: pure functions, no HTTP.

Content types are those SageMaker sends: `application/json` (one customer, or `{"instances": [...]}`),
`text/csv` (rows of recency,frequency,monetary, header optional) and `application/jsonlines` (one
customer per line, as batch transform splits files). The response type follows Accept; without one
(or `*/*`) it is the request's type. Bad input raises `DataError` naming the record and field
(400); an unknown Content-Type raises `UnsupportedContentType` (415), an Accept we cannot produce
`NotAcceptable` (406).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from pydantic import ValidationError

from rfm.errors import DataError, RfmError
from rfm.serving.records import (
    FIELDS,
    BatchRequest,
    CustomerRecord,
    check_matrix,
    describe_validation_error,
    validate_record,
    validate_records,
)

try:  # a faster JSON codec when installed; the standard library otherwise
    import orjson

    def _loads(data: bytes | str) -> object:
        return orjson.loads(data)

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - exercised when orjson is absent
    def _reject_constant(name: str) -> NoReturn:
        raise ValueError(f"{name} is not allowed")

    def _loads(data: bytes | str) -> object:
        return json.loads(data, parse_constant=_reject_constant)

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()

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


@dataclass
class Batch:
    """Parsed input: the (n, 3) matrix, the records as given (for `input_data`), one customer or many."""

    values: np.ndarray
    inputs: list[dict[str, int | float]] | None
    single: bool

    def input_dicts(self) -> list[dict[str, int | float]]:
        if self.inputs is None:  # CSV: built only when a JSON response needs them
            self.inputs = [dict(zip(FIELDS, row, strict=True)) for row in self.values.tolist()]
        return self.inputs


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


def decode(body: bytes, kind: str) -> Batch:
    """Parse and validate a request body of a canonical content type."""
    if not body.strip():
        raise DataError("empty request body: send one customer {\"recency\", \"frequency\", \"monetary\"} or more")
    if kind == JSON:
        return _decode_json(body)
    if kind == CSV:
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


def _decode_csv(body: bytes) -> Batch:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError("CSV body is not UTF-8 text") from None
    lines = text.splitlines()
    order = [0, 1, 2]
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    header_seen = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.split(",") if '"' not in line else next(csv.reader([line]))
        if not rows and not header_seen and _is_header(cells):
            order = _header_order(cells, number)
            header_seen = True
            continue
        if len(cells) != 3:
            raise DataError(f"record {len(rows)} (line {number}): expected 3 values (recency,frequency,monetary), "
                            f"got {len(cells)}")
        rows.append(cells)
        line_numbers.append(number)
    if not rows:
        raise DataError("CSV body has no data rows (expected recency,frequency,monetary per line)")
    try:
        values = np.array(rows, dtype="float64")
    except ValueError:
        values = _parse_cells(rows, line_numbers, order)
    values = values[:, np.argsort(order)] if order != [0, 1, 2] else values
    check_matrix(values, line_of=line_numbers)
    return Batch(np.ascontiguousarray(values), None, single=False)


def _parse_cells(rows: list[list[str]], line_numbers: list[int], order: list[int]) -> np.ndarray:
    """Cell by cell, to name the first cell that is not a number."""
    for i, cells in enumerate(rows):
        for j, cell in enumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise DataError(f"record {i} (line {line_numbers[i]}): field {FIELDS[order[j]]!r} must be a "
                                f"number, got {cell.strip()[:40]!r}") from None
    raise DataError("CSV body has values that are not numbers")  # pragma: no cover - numpy and float agree


def _is_header(cells: list[str]) -> bool:
    for cell in cells:
        try:
            float(cell)
            return False
        except ValueError:
            continue
    return True


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
    id_list = ids.tolist()
    if kind == CSV:
        quoted = [_csv_cell(n) for n in names]
        return ("\n".join(f"{i},{quoted[i]}" for i in id_list) + "\n").encode()
    results = [
        {"cluster": i, "segment": names[i], "input_data": inp, "model_version": version}
        for i, inp in zip(id_list, batch.input_dicts(), strict=True)
    ]
    if kind == JSONLINES:
        return b"".join(_dumps(r) + b"\n" for r in results)
    if batch.single:
        return _dumps(results[0])
    return _dumps({"predictions": results})


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([text])
        return buffer.getvalue()
    return text


def dumps(obj: object) -> bytes:
    """JSON bytes for other responses (errors, /model)."""
    return _dumps(obj)
