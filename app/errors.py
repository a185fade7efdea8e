"""The errors the domain raises and the web side turns into its envelope (`app/http.py`).

Apart from `app/http.py` so that services, which raise them, need nothing of the web layer.
"""


class ApiError(Exception):
    """A failure with an HTTP status and a message key of `app.i18n`."""

    def __init__(self, status: int, key: str, detail: dict | None = None, **params):
        super().__init__(key)
        self.status = status
        self.key = key
        self.detail = detail
        self.params = params


class FieldErrors(ApiError):
    """422 with `detail.validationErrors` for rules checked after the schema (lookups)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(422, "validation_failed", {"validationErrors": errors})
