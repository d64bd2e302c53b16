"""GET /models?kind=… answers 422 for a kind nothing knows, like GET /jobs?kind=… does."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import PROBLEM

pytestmark = pytest.mark.integration


def test_an_unknown_model_kind_is_422_naming_the_known_ones(client: TestClient) -> None:
    response = client.get("/models", params={"kind": "bogus"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "'clip'" in str(response.json()["errors"]) and "'knowledge-encoder'" in str(response.json()["errors"])
    assert client.get("/models", params={"kind": "clip"}).status_code == 200
    assert client.get("/jobs", params={"kind": "bogus"}).status_code == 422
