"""The one definition of a valid customer record for scoring, shared by the server and the clients.

A record is exactly `{"recency", "frequency", "monetary"}`: numbers only (no strings, no booleans),
finite, recency and frequency >= 0; monetary may be zero or negative (such customers score as
"No Net Revenue"). JSON records go through the pydantic model (which also documents the API in
OpenAPI); CSV rows are parsed to a numpy matrix and checked by `check_matrix` with the same rules, so
a 10,000-row batch is validated in one vectorised pass. Every error names the record and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainValidator, TypeAdapter, ValidationError, WithJsonSchema

from rfm.errors import DataError, short_repr

FIELDS: tuple[str, str, str] = ("recency", "frequency", "monetary")
NON_NEGATIVE: frozenset[str] = frozenset({"recency", "frequency"})


def _number(value: object) -> int | float:
    """A JSON number as given (ints stay ints, so the echoed input reads like the request)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {value!r}")
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            raise ValueError("is too large") from None
    elif not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


def _non_negative(value: object) -> int | float:
    number = _number(value)
    if number < 0:
        raise ValueError(f"cannot be negative, got {number!r}")
    return number


NonNegativeNumber = Annotated[int | float, PlainValidator(_non_negative),
                              WithJsonSchema({"type": "number", "minimum": 0})]
FiniteNumber = Annotated[int | float, PlainValidator(_number), WithJsonSchema({"type": "number"})]


class CustomerRecord(BaseModel):
    """One customer to score: days since the last purchase, number of invoices, net revenue."""

    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra={"example": {"recency": 15, "frequency": 12, "monetary": 540}})

    recency: NonNegativeNumber
    frequency: NonNegativeNumber
    monetary: FiniteNumber

    def row(self) -> tuple[float, float, float]:
        return (float(self.recency), float(self.frequency), float(self.monetary))


def plain_record(data: object) -> dict[str, int | float] | None:
    """A valid customer record as the validated record's dump, checked in plain Python (the server's
    one-customer hot path); None when anything is off, so `validate_record` explains what."""
    if not isinstance(data, dict) or len(data) != 3:
        return None
    try:
        record = {name: data[name] for name in FIELDS}
    except KeyError:
        return None
    for name, value in record.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, int) and abs(value) > 2**53:  # validate_record says whether it is too large
            return None
        if name in NON_NEGATIVE and value < 0:
            return None
    return record


class BatchRequest(BaseModel):
    """Several customers in one request (SageMaker's `instances` convention)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: list[CustomerRecord]


_RECORDS = TypeAdapter(list[CustomerRecord])


def describe_validation_error(exc: ValidationError, *, index_offset: int = 0, single: bool = False) -> str:
    """The first error of a pydantic validation as one line naming the record and the field."""
    err = exc.errors(include_url=False)[0]
    loc = list(err["loc"])
    if len(loc) > 1 and loc[0] == "instances" and isinstance(loc[1], int):
        loc = loc[1:]
    prefix = ""
    if loc and isinstance(loc[0], int):
        prefix = f"record {loc[0] + index_offset}: "
        loc = loc[1:]
    elif single:
        prefix = f"record {index_offset}: "
    field = ".".join(str(p) for p in loc)
    kind = err["type"]
    if kind == "missing":
        what = f"field {field!r} is missing (a record has {', '.join(FIELDS)})"
    elif kind == "extra_forbidden":
        what = f"unexpected field {field!r} (a record has only {', '.join(FIELDS)})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        what = f"expected an object with {', '.join(FIELDS)}, got {short_repr(err.get('input'), 40)}"
    elif kind == "list_type":
        what = f"field {field!r} must be a list of records, got {short_repr(err.get('input'), 40)}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        what = f"field {field!r} {message}" if field else message
    more = len(exc.errors()) - 1
    return prefix + what + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def validate_record(data: object, *, index: int = 0) -> CustomerRecord:
    """One record from parsed JSON (a dict), or DataError naming the record and field."""
    try:
        return CustomerRecord.model_validate(data)
    except ValidationError as exc:
        raise DataError(describe_validation_error(exc, index_offset=index, single=True)) from None


def validate_records(data: object, *, index_offset: int = 0) -> list[CustomerRecord]:
    """Several records from parsed JSON (a list of dicts), or DataError naming the first bad one."""
    try:
        return _RECORDS.validate_python(data)
    except ValidationError as exc:
        raise DataError(describe_validation_error(exc, index_offset=index_offset)) from None


def records_from_mappings(records: Sequence[Mapping[str, object]]) -> list[CustomerRecord]:
    """Client-side validation of `score_batch` input (same rules as the server)."""
    return validate_records([dict(r) if isinstance(r, Mapping) else r for r in records])


def check_matrix(values: np.ndarray, *, first_record: int = 0, line_of: Sequence[int] | None = None) -> None:
    """The record rules applied to an (n, 3) float matrix of recency, frequency, monetary (CSV input)."""
    bad_finite = ~np.isfinite(values)
    bad_negative = np.zeros_like(bad_finite)
    for j, field in enumerate(FIELDS):
        if field in NON_NEGATIVE:
            bad_negative[:, j] = values[:, j] < 0
    bad = bad_finite | bad_negative
    if not bad.any():
        return
    i, j = (int(x) for x in np.argwhere(bad)[0])
    where = f"record {i + first_record}" + (f" (line {line_of[i]})" if line_of is not None else "")
    value = float(values[i, j])
    reason = f"must be a finite number, got {value!r}" if bad_finite[i, j] else f"cannot be negative, got {value!r}"
    raise DataError(f"{where}: field {FIELDS[j]!r} {reason}")
