"""The OpenAPI description, fuzzed with schemathesis against the app in process (no 5xx, documented
status codes, content types and response schemas), and the request timeout."""

from __future__ import annotations

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from rfm.model import ModelStore
from rfm.server import app as app_module
from rfm.server.app import create_app
from rfm.server.settings import ServerSettings


@schemathesis.serializer("text/csv", "application/jsonlines")
def _text_body(ctx: object, value: object) -> bytes:
    """Both are text formats described as strings: send the generated text as it is."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


APP = create_app(ModelStore("models").load())
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_description(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance, negative_data_rejection])


def test_openapi_documents_typed_request_models() -> None:
    doc = APP.openapi()
    record = doc["components"]["schemas"]["CustomerRecord"]
    assert record["required"] == ["recency", "frequency", "monetary"]
    assert record["additionalProperties"] is False
    assert record["properties"]["frequency"]["minimum"] == 0
    body = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv", "application/jsonlines"}
    assert set(doc["paths"]["/invocations"]["post"]["responses"]) >= {"200", "400", "406", "413", "415"}


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
