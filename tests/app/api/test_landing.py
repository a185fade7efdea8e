"""Where a newcomer lands: `/`, `/api/v1` (the URL `scripts/run` prints) and the favicon."""

import re
from pathlib import Path

import pytest

from tests.app.api.helpers import TIMESTAMP

ROOT = Path(__file__).resolve().parents[3]


def test_root_leads_to_the_api_docs(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/api/v1/docs"
    assert client.get("/", follow_redirects=True).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1", "/api/v1/"])
def test_api_root_answers_an_index_of_links_without_a_token(client, path):
    response = client.get(path)

    assert response.status_code == 200
    payload = response.get_json()
    assert payload["success"] is True and TIMESTAMP.match(payload["timestamp"])
    assert payload["data"]["links"] == {
        "docs": "/api/v1/docs",
        "openapi": "/api/v1/openapi.json",
        "health": "/api/v1/health",
        "metrics": "/api/v1/metrics",
    }
    for link in ("docs", "openapi", "health"):
        assert client.get(payload["data"]["links"][link]).status_code == 200


def test_the_index_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    assert "200" in spec["paths"]["/api/v1"]["get"]["responses"]


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response.mimetype == "image/png" and response.data.startswith(b"\x89PNG")
    response.close()


def test_every_url_scripts_run_prints_answers(client):
    script = (ROOT / "scripts" / "run").read_text()
    paths = re.findall(r"http://\$ZDM_BIND(/\S*)", script)

    assert "/api/v1" in paths, paths
    for path in paths:
        assert client.get(path).status_code == 200, path
