"""What schemathesis found (tests/app/api/test_fuzz.py), each kept as a literal scenario.

An answer's status must be one its operation lists in the OpenAPI document (not merely
covered by `default`), and its body must match the schema of that status."""

import pytest

from tests.app.api.helpers import SEED_BASIC, body
from tests.app.api.openapi_check import assert_documented


@pytest.fixture
def spec(client):
    return client.get("/api/v1/openapi.json").get_json()


def test_revoking_a_token_answers_the_documented_token(client, auth, spec):
    response = client.post("/api/v1/token/revoke", headers=auth)

    assert response.status_code == 200
    assert response.get_json()["data"]["token"] is None
    assert_documented(spec, "POST", "/api/v1/token/revoke", response)


@pytest.mark.parametrize(
    ("method", "path", "url"),
    [
        ("GET", "/api/v1/centers/{ref}", "/api/v1/centers/nowhere"),
        ("GET", "/api/v1/servers/{ref}", "/api/v1/servers/nowhere"),
        ("DELETE", "/api/v1/servers/{ref}", "/api/v1/servers/nowhere"),
        ("GET", "/api/v1/servers/{ref}/partitions", "/api/v1/servers/nowhere/partitions"),
        ("GET", "/api/v1/repositories/{ref}", "/api/v1/repositories/99"),
        ("PUT", "/api/v1/repositories/{ref}", "/api/v1/repositories/99"),
        ("DELETE", "/api/v1/repositories/{ref}", "/api/v1/repositories/99"),
        ("POST", "/api/v1/repositories/{ref}/verify", "/api/v1/repositories/99/verify"),
        ("GET", "/api/v1/repositories/{ref}/verifications", "/api/v1/repositories/99/verifications"),
        ("GET", "/api/v1/users/{ref}", "/api/v1/users/nobody@example.com"),
        ("POST", "/api/v1/users/{ref}/disable", "/api/v1/users/nobody@example.com/disable"),
        ("POST", "/api/v1/users/{ref}/enable", "/api/v1/users/nobody@example.com/enable"),
        ("POST", "/api/v1/users/{ref}/revoke-tokens", "/api/v1/users/nobody@example.com/revoke-tokens"),
    ],
)  # fmt: skip
def test_not_found_is_a_documented_answer(client, auth, spec, method, path, url):
    json = {"PUT": {"verifySchedule": None}, "POST": {}}.get(method)

    response = client.open(url, method=method, json=json, headers=auth)

    assert response.status_code == 404
    assert_documented(spec, method, path, response)


def test_unknown_center_of_a_new_server_or_repository_is_a_documented_404(client, auth, spec):
    server = client.post("/api/v1/servers", json={"name": "s1", "center": "nowhere"}, headers=auth)
    repository = client.post(
        "/api/v1/repositories",
        json={"center": "nowhere", "type": "local", "path": "/backup/elsewhere"},
        headers=auth,
    )

    assert (server.status_code, repository.status_code) == (404, 404)
    assert_documented(spec, "POST", "/api/v1/servers", server)
    assert_documented(spec, "POST", "/api/v1/repositories", repository)


def test_duplicates_and_things_in_use_are_documented_409s(client, auth, spec, seed_inventory):
    assert client.post("/api/v1/backups", json=SEED_BASIC, headers=auth).status_code == 201
    answers = {
        ("POST", "/api/v1/centers"): client.post(
            "/api/v1/centers", json={"name": "CENTER-001"}, headers=auth
        ),
        ("POST", "/api/v1/servers"): client.post(
            "/api/v1/servers", json={"name": "web-server-01", "center": "CENTER-001"}, headers=auth
        ),
        ("POST", "/api/v1/repositories"): client.post(
            "/api/v1/repositories",
            json={"center": "CENTER-001", "type": "local", "path": "/backup/storage"},
            headers=auth,
        ),
        ("POST", "/api/v1/users"): client.post(
            "/api/v1/users",
            json={
                "email": "admin@example.com",
                "password": "another long password",
                "role": "viewer",
            },
            headers=auth,
        ),
        ("DELETE", "/api/v1/servers/{ref}"): client.delete(
            "/api/v1/servers/web-server-01", headers=auth
        ),
        ("DELETE", "/api/v1/repositories/{ref}"): client.delete(
            "/api/v1/repositories/1", headers=auth
        ),
    }

    for (method, path), response in answers.items():
        assert response.status_code == 409, (method, path, response.get_json())
        assert_documented(spec, method, path, response)


def test_a_job_name_of_several_jobs_is_a_documented_409(client, auth, spec, seed_inventory):
    for partition in ("/dev/sda1", "/dev/sda2"):
        created = client.post(
            "/api/v1/backups", json=body(partition=[partition], jobName="twice"), headers=auth
        )
        assert created.status_code == 201
    job = "/api/v1/backups/{ref}"
    answers = {
        ("GET", job): client.get("/api/v1/backups/twice", headers=auth),
        ("PUT", job): client.put("/api/v1/backups/twice", json={"rotation": 3}, headers=auth),
        ("DELETE", job): client.delete("/api/v1/backups/twice", headers=auth),
        ("POST", job + "/start"): client.post("/api/v1/backups/twice/start", headers=auth),
        ("POST", job + "/stop"): client.post("/api/v1/backups/twice/stop", headers=auth),
        ("POST", job + "/run"): client.post("/api/v1/backups/twice/run", headers=auth),
        ("GET", job + "/runs"): client.get("/api/v1/backups/twice/runs", headers=auth),
        ("GET", job + "/recovery-points"): client.get(
            "/api/v1/backups/twice/recovery-points", headers=auth
        ),
        ("GET", "/api/v1/backups/monitoring/job/{ref}"): client.get(
            "/api/v1/backups/monitoring/job/twice", headers=auth
        ),
    }

    for (method, path), response in answers.items():
        assert response.status_code == 409, (method, path, response.get_json())
        assert_documented(spec, method, path, response)


def test_post_backups_documents_the_seed_request_as_its_example(spec):
    request = spec["paths"]["/api/v1/backups"]["post"]["requestBody"]["content"]["application/json"]

    assert request["example"] == SEED_BASIC


def test_registration_links_the_new_job_to_its_operations(spec):
    links = spec["paths"]["/api/v1/backups"]["post"]["responses"]["201"]["links"]

    targets = {link["operationRef"] for link in links.values()}
    assert "#/paths/~1api~1v1~1backups~1{ref}/get" in targets
    assert "#/paths/~1api~1v1~1backups~1{ref}/delete" in targets
    for link in links.values():
        assert link["parameters"] == {"ref": "$response.body#/data/results/0/id"}
        method = link["operationRef"].rsplit("/", 1)[1]
        path = link["operationRef"][len("#/paths/") : -len(method) - 1].replace("~1", "/")
        assert method in spec["paths"][path]


def test_histories_is_the_history_list_not_a_job_ref(client, auth, spec, seed_inventory):
    created = client.post("/api/v1/backups", json=body(jobName="histories"), headers=auth)
    job_id = created.get_json()["data"]["results"][0]["id"]

    by_path = client.get("/api/v1/backups/histories", headers=auth)
    by_id = client.get(f"/api/v1/backups/{job_id}", headers=auth)

    assert "items" in by_path.get_json()["data"]  # the list, not the job
    assert_documented(spec, "GET", "/api/v1/backups/histories", by_path)
    assert by_id.get_json()["data"]["job"]["info"]["name"] == "histories"
    [ref] = spec["paths"]["/api/v1/backups/{ref}"]["parameters"]
    assert ref["schema"]["not"] == {"enum": ["histories"]}
