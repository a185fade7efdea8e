"""Odd and hostile input gets a clear envelope error, never a 500, on SQLite and PostgreSQL."""

import json

import pytest

from tests.app.api.helpers import SEED_BASIC, assert_error, body, job_count

pytestmark = pytest.mark.usefixtures("seed_inventory")


def test_cron_that_never_fires_is_422(client, auth):
    data = body(schedule={"type": "custom", "description": "0 0 30 2 *"})

    assert_error(
        client.post("/api/v1/backups", json=data, headers=auth),
        422,
        paths=("schedule.description",),
    )
    assert job_count() == 0


@pytest.mark.parametrize(
    "path",
    ["/api/v1/backups/²", "/api/v1/servers/²", "/api/v1/centers/٣", "/api/v1/runs/99999999999"],
)
def test_unicode_digits_and_huge_ids_are_not_found(client, auth, path):
    assert_error(client.get(path, headers=auth), 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=1e20", "page"),
        ("page=99999999", "page"),
        ("repositoryID=99999999999", "repositoryID"),
    ],
)
def test_out_of_range_query_numbers_are_422(client, auth, query, field):
    assert_error(client.get(f"/api/v1/backups?{query}", headers=auth), 422, paths=(field,))


def test_unicode_digit_filter_matches_nothing(client, auth):
    response = client.get("/api/v1/backups?center=²", headers=auth)

    assert response.status_code == 200 and response.get_json()["data"]["items"] == []


def test_deeply_nested_json_is_400(client, auth):
    nested = "[" * 100_000 + "]" * 100_000

    response = client.post(
        "/api/v1/backups", data=nested, headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 400)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"jobName": "web\ud800"}, "jobName"),
        ({"description": "nul\x00inside"}, "description"),
        ({"partition": ["/dev/sda1\x00"]}, "partition"),
    ],
)
def test_unstorable_strings_are_422(client, auth, changes, path):
    escaped = json.dumps(body(**changes))  # "\\ud800" as a JSON escape, as a client would send it
    response = client.post(
        "/api/v1/backups", data=escaped, headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 422, paths=(path,))
    assert job_count() == 0


def test_nul_in_a_path_segment_is_an_envelope_error(client, auth):
    client.post("/api/v1/backups", json=SEED_BASIC, headers=auth)

    response = client.get("/api/v1/backups/daily%00backup", headers=auth)

    assert response.status_code in (400, 404)  # PostgreSQL refuses the value; SQLite finds nothing
    assert_error(response, response.status_code)
