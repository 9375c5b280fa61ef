"""Request parsing and response rendering (pure functions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm.errors import DataError
from rfm.server import codecs
from rfm.server.codecs import CSV, JSON, JSONLINES, NotAcceptable, UnsupportedContentType


@pytest.mark.parametrize(("header", "kind"), [
    ("application/json", JSON), ("application/json; charset=utf-8", JSON), ("TEXT/CSV", CSV),
    ("application/jsonlines", JSONLINES), ("application/x-jsonlines", JSONLINES),
])
def test_request_types(header: str, kind: str) -> None:
    assert codecs.request_type(header) == kind


@pytest.mark.parametrize("header", [None, "", "application/x-www-form-urlencoded", "text/plain", "application/xml"])
def test_unsupported_request_types(header: str | None) -> None:
    with pytest.raises(UnsupportedContentType):
        codecs.request_type(header)


@pytest.mark.parametrize(("accept", "request_kind", "expected"), [
    (None, CSV, CSV), ("*/*", JSONLINES, JSONLINES), ("application/json", CSV, JSON),
    ("text/csv;q=0.5, application/jsonlines", JSON, JSONLINES), ("text/csv;q=0.9, application/json;q=0.1", JSON, CSV),
    ("text/html, */*;q=0.1", CSV, CSV), ("application/*", CSV, JSON), ("text/html, text/csv", JSON, CSV),
])
def test_accept_negotiation(accept: str | None, request_kind: str, expected: str) -> None:
    assert codecs.response_type(accept, request_kind) == expected


@pytest.mark.parametrize("accept", ["text/html", "application/xml, image/png", "application/json;q=0"])
def test_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable):
        codecs.response_type(accept, JSON)


def test_csv_with_and_without_header_and_reordered_columns() -> None:
    plain = codecs.decode(b"15,12,540\n200,1,35.5\n", CSV)
    header = codecs.decode(b"recency,frequency,monetary\r\n15,12,540\r\n200,1,35.5\r\n\r\n", CSV)
    reordered = codecs.decode(b"Monetary, Recency ,frequency\n540,15,12\n35.5,200,1\n", CSV)
    expected = np.array([[15, 12, 540], [200, 1, 35.5]], dtype=float)
    for batch in (plain, header, reordered):
        np.testing.assert_array_equal(batch.values, expected)
        assert not batch.single
    assert reordered.input_dicts()[1] == {"recency": 200.0, "frequency": 1.0, "monetary": 35.5}


@pytest.mark.parametrize(("body", "message"), [
    (b"15,12,540\n3,x,5\n", r"record 1 \(line 2\): field 'frequency' must be a number, got 'x'"),
    (b"recency,frequency,monetary\n15,12\n", r"record 0 \(line 2\): expected 3 values"),
    (b"15,12,540\n1,-2,5\n", r"record 1 \(line 2\): field 'frequency' cannot be negative"),
    (b"15,nan,540\n", r"record 0 \(line 1\): field 'frequency' must be a finite number"),
    (b"1,2,inf\n", r"field 'monetary' must be a finite number"),
    (b"recency,frequency,amount\n1,2,3\n", r"line 1: CSV header must name recency, frequency, monetary"),
    (b"recency,frequency,monetary\n", r"no data rows"),
    (b"1,2,\n", r"field 'monetary' must be a number"),
    (b"\xff\xfe1,2,3", r"not UTF-8"),
    (b"  \n", r"empty request body"),
])
def test_csv_errors_name_record_and_field(body: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        codecs.decode(body, CSV)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"recency": 1, "frequency": 2}', r"field 'monetary' is missing"),
    (b'{"recency": 1, "frequency": 2, "monetary": 3, "x": 1}', r"unexpected field 'x'"),
    (b'{"recency": "1", "frequency": 2, "monetary": 3}', r"field 'recency' must be a number"),
    (b'{"recency": 1, "frequency": 2, "monetary": NaN}', r"malformed JSON"),
    (b'{"recency": 1, "frequency": 2, "monetary": 1e999}', r"malformed JSON|finite"),
    (b'{"recency": 1, "frequency": -2, "monetary": 3}', r"field 'frequency' cannot be negative"),
    (b'{"recency": 1, "frequency": 2, "monetary": 3', r"malformed JSON"),
    (b'[{"recency": 1, "frequency": 2, "monetary": 3}]', r"expected a JSON object"),
    (b'{"instances": [{"recency": 1, "frequency": 2, "monetary": 3}, {"recency": null, "frequency": 2, '
     b'"monetary": 3}]}', r"record 1: field 'recency' must be a number"),
    (b'{"instances": {"recency": 1}}', r"field 'instances' must be a list"),
    (b'{"instances": [1]}', r"record 0: expected an object"),
    (b'{"instances": [], "extra": 1}', r"unexpected field 'extra'"),
])
def test_json_errors(body: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        codecs.decode(body, JSON)


def test_jsonlines_errors_and_values() -> None:
    batch = codecs.decode(b'{"recency": 1, "frequency": 2, "monetary": 3}\n\n{"recency": 4, "frequency": 5, '
                          b'"monetary": 6.5}\n', JSONLINES)
    np.testing.assert_array_equal(batch.values, [[1, 2, 3], [4, 5, 6.5]])
    with pytest.raises(DataError, match=r"record 1 \(line 2\): malformed JSON"):
        codecs.decode(b'{"recency": 1, "frequency": 2, "monetary": 3}\n{oops\n', JSONLINES)
    with pytest.raises(DataError, match=r"record 1: field 'frequency' cannot be negative"):
        codecs.decode(b'{"recency": 1, "frequency": 2, "monetary": 3}\n{"recency": 1, "frequency": -2, '
                      b'"monetary": 3}\n', JSONLINES)


def test_encode_each_type() -> None:
    names = ["Champions", 'Big, "Spenders"', "No Net Revenue"]
    single = codecs.decode(b'{"recency": 15, "frequency": 12, "monetary": 540}', JSON)
    ids = np.array([1])
    assert json.loads(codecs.encode(single, ids, names, "v1", JSON)) == {
        "cluster": 1, "segment": 'Big, "Spenders"', "input_data": {"recency": 15, "frequency": 12, "monetary": 540},
        "model_version": "v1"}
    batch = codecs.decode(b"1,2,3\n4,5,-6\n", CSV)
    ids = np.array([0, -1])
    assert codecs.encode(batch, ids, names, "v1", CSV) == b'0,Champions\n-1,No Net Revenue\n'
    assert codecs.encode(batch, np.array([1]), names, "v1", CSV).startswith(b'1,"Big, ""Spenders"""')
    lines = codecs.encode(batch, ids, names, "v1", JSONLINES).decode().splitlines()
    assert [json.loads(x)["segment"] for x in lines] == ["Champions", "No Net Revenue"]
    body = json.loads(codecs.encode(batch, ids, names, "v1", JSON))
    assert [p["input_data"]["monetary"] for p in body["predictions"]] == [3.0, -6.0]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["recency", "frequency", "monetary", "other"]),
                       st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                                 st.booleans(), st.text(max_size=3), st.none()), max_size=4))
def test_the_plain_record_check_agrees_with_the_validator(data: dict[str, object]) -> None:
    """The server's one-customer hot path skips pydantic: whatever it accepts, the validator accepts
    with the very same values (ints stay ints); anything else goes to the validator for its message."""
    from rfm.serving.records import plain_record, validate_record

    quick = plain_record(data)
    if quick is None:
        return
    full = validate_record(data).model_dump()
    assert quick == full and [type(v) for v in quick.values()] == [type(v) for v in full.values()]
