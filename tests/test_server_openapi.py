"""The OpenAPI description, fuzzed with schemathesis against the app in process (no 5xx, documented
status codes, content types and response schemas), and the request timeout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from rfm.model import ModelStore
from rfm.server import app as app_module
from rfm.server.app import create_app
from rfm.server.settings import ServerSettings


def _csv_cell(value: object) -> str:
    """A generated value as a CSV cell: numbers as JSON writes them, anything else as quoted text
    (csv.QUOTE_NONNUMERIC's convention, which the server's decoder follows), a missing one empty."""
    if value is _MISSING:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return '"' + text.replace('"', '""') + '"'


_MISSING = object()


@schemathesis.serializer("text/csv")
def _csv_body(ctx: object, value: object) -> bytes:
    """A list of customers as the description says: a header naming the first record's fields, then one
    line a record with its values in the header's order (missing ones empty, extra ones appended)."""
    if not isinstance(value, list):
        return _csv_cell(value).encode("utf-8", "surrogatepass")
    header = list(value[0]) if value and isinstance(value[0], dict) else []
    lines = [",".join(_csv_cell(name) if not name.isidentifier() else name for name in header)] if header else []
    for record in value:
        if isinstance(record, dict):
            cells = [record.get(name, _MISSING) for name in header] + [v for k, v in record.items() if k not in header]
        else:
            cells = [record]
        lines.append(",".join(_csv_cell(cell) for cell in cells))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@schemathesis.serializer("application/jsonlines")
def _jsonlines_body(ctx: object, value: object) -> bytes:
    """A list of customers as JSON Lines: one JSON value a line (anything else: its JSON text)."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode("utf-8", "surrogatepass")


APP = create_app(ModelStore("models").load())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_description(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance, negative_data_rejection, positive_data_acceptance])


def test_openapi_documents_typed_request_models() -> None:
    doc = APP.openapi()
    record = doc["components"]["schemas"]["CustomerRecord"]
    assert record["required"] == ["recency", "frequency", "monetary"]
    assert record["additionalProperties"] is False
    assert record["properties"]["frequency"]["minimum"] == 0
    body = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv", "application/jsonlines"}
    assert set(doc["paths"]["/invocations"]["post"]["responses"]) >= {"200", "400", "406", "413", "415"}
    # The text bodies are described as the lists of customers they carry, not as any string.
    for kind in ("text/csv", "application/jsonlines"):
        assert body[kind]["schema"]["type"] == "array"
        assert body[kind]["schema"]["items"] == {"$ref": "#/components/schemas/CustomerRecord"}


def test_large_batches_are_cut_off_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ModelStore("models").load()
    slow = create_app(model, ServerSettings(timeout=0.05))
    monkeypatch.setattr(app_module, "THREAD_THRESHOLD_BYTES", 10)
    original = model.predict

    def slow_predict(values: np.ndarray) -> np.ndarray:
        import time

        time.sleep(0.5)
        return original(values)

    monkeypatch.setattr(model, "predict", slow_predict)
    with TestClient(slow) as client:
        response = client.post("/invocations", content=b"1,2,3\n4,5,6\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 504
    assert "longer than 0.05 s" in response.json()["detail"]
