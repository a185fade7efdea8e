"""Every message in the language the request asks for: Korean by default, English with
`Accept-Language: en`. Cron errors name the field, the value and its range in our own
words, never croniter's English."""

import re

import pytest

from app.i18n import translate_validation_message
from tests.app.api.helpers import assert_error, body

pytestmark = pytest.mark.usefixtures("seed_inventory")

ENGLISH_WORDS = re.compile(r"[A-Za-z]{3,}")
# Words that are not English prose: cron aliases and names, field names of the API.
NOT_PROSE = {
    "cron",
    "null",
    "true",
    "false",
    "UTF",
    "JAN",
    "DEC",
    "SUN",
    "SAT",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "custom",
}


def english_words(text: str) -> set[str]:
    quoted = set(re.findall(r"'([^']*)'", text))
    words = set(ENGLISH_WORDS.findall(re.sub(r"'[^']*'", "", text)))
    return {w for w in words - NOT_PROSE if w not in quoted}


def schedule_error(client, auth, expression, language=None, type_="custom") -> str:
    headers = dict(auth)
    if language:
        headers["Accept-Language"] = language
    response = client.post(
        "/api/v1/backups",
        json=body(schedule={"type": type_, "description": expression}),
        headers=headers,
    )
    payload = assert_error(response, 422, paths=("schedule.description",))
    [message] = payload["detail"]["validationErrors"]["schedule.description"]
    return message


@pytest.mark.parametrize(
    ("expression", "korean", "english"),
    [
        (
            "0 25 * * *",
            "시 필드의 값 '25'이(가) 허용 범위(0-23)를 벗어났습니다",
            "The hour field's value '25' is outside its range 0-23.",
        ),
        (
            "61 2 * * *",
            "분 필드의 값 '61'이(가) 허용 범위(0-59)를 벗어났습니다",
            "The minute field's value '61' is outside its range 0-59.",
        ),
        (
            "0 2 1,2,32 * *",
            "일 필드의 값 '32'이(가) 허용 범위(1-31, L)를 벗어났습니다",
            "The day-of-month field's value '32' is outside its range 1-31, L.",
        ),
        (
            "0 2 * 13 *",
            "월 필드의 값 '13'이(가) 허용 범위(1-12, JAN-DEC)를 벗어났습니다",
            "The month field's value '13' is outside its range 1-12, JAN-DEC.",
        ),
        (
            "0 2 * * 8",
            "요일 필드의 값 '8'이(가) 허용 범위(0-7, SUN-SAT)를 벗어났습니다",
            "The day-of-week field's value '8' is outside its range 0-7, SUN-SAT.",
        ),
        (
            "0 2 * * funday",
            "요일 필드의 값 'funday'을(를) 읽을 수 없습니다 (허용 범위 0-7, SUN-SAT)",
            "The day-of-week field's value 'funday' is not valid (range 0-7, SUN-SAT).",
        ),
        (
            "*/0 * * * *",
            "분 필드의 값 '*/0'을(를) 읽을 수 없습니다 (허용 범위 0-59)",
            "The minute field's value '*/0' is not valid (range 0-59).",
        ),
        (
            "@yearly",
            "알 수 없는 별칭 '@yearly'입니다. @hourly, @daily, @weekly, @monthly 중 하나여야 합니다",
            "Unknown alias '@yearly'; use one of @hourly, @daily, @weekly, @monthly.",
        ),
    ],
)
def test_cron_errors_name_field_value_and_range_in_each_language(
    client, auth, expression, korean, english
):
    assert schedule_error(client, auth, expression) == korean
    assert schedule_error(client, auth, expression, "en") == english


def test_the_issues_example_has_no_english_in_korean(client, auth):
    message = schedule_error(client, auth, "0 25 * * *", type_="daily")

    assert "acceptable" not in message and "range" not in message
    assert english_words(message) == set()


@pytest.mark.parametrize(
    ("type_", "expression"),
    [("daily", "0 * * * *"), ("hourly", "* * * * *"), ("weekly", "0 2 * * *"),
     ("monthly", "0 2 * * *"), ("custom", "0 0 30 2 *"), ("daily", "0 2 * *")],
)  # fmt: skip
def test_schedule_shape_errors_are_korean_through_and_through(client, auth, type_, expression):
    korean = schedule_error(client, auth, expression, type_=type_)
    english = schedule_error(client, auth, expression, "en", type_=type_)

    assert english_words(korean) == set(), korean
    assert english_words(english), english


@pytest.mark.parametrize(
    "message",
    [
        "Missing data for required field.",
        "Unknown field.",
        "Field may not be null.",
        "Invalid value.",
        "Not a valid string.",
        "Not a valid utf-8 string.",
        "Not a valid integer.",
        "Not a valid number.",
        "Number too large.",
        "Not a valid boolean.",
        "Not a valid list.",
        "Not a valid mapping type.",
        "Invalid type.",
        "Invalid input type.",
        "Not a valid email address.",
        "Must be one of: gzip, lz4.",
        "Must be greater than or equal to 1 and less than or equal to 365.",
        "Must be greater than or equal to 0.",
        "Must be less than or equal to 365.",
        "Shorter than minimum length 1.",
        "Longer than maximum length 128.",
        "Length must be between 1 and 128.",
        "Length must be 5.",
    ],
)
def test_every_marshmallow_message_has_korean(app, message):
    with app.test_request_context():
        korean = translate_validation_message(message)

    assert english_words(korean) <= {"gzip", "lz4"}, korean


def test_a_repositorys_verify_schedule_errors_alike(client, auth):
    response = client.put(
        "/api/v1/repositories/1", json={"verifySchedule": "0 25 * * *"}, headers=auth
    )

    payload = assert_error(response, 422, paths=("verifySchedule",))
    assert payload["detail"]["validationErrors"]["verifySchedule"] == [
        "시 필드의 값 '25'이(가) 허용 범위(0-23)를 벗어났습니다"
    ]
