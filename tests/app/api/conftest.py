"""Collection fix for tests/app/api/test_fuzz.py."""


def pytest_collection_modifyitems(items):
    """schemathesis (4.32.5) makes one item per operation, named `test[GET /api/v1/...]`,
    but pytest 9 builds a node id from the test's original name only: every item would have
    the same id, and pytest-xdist, which schedules by id, would run one of them. Give each
    item the id its name says."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if label is not None and item.nodeid == item.parent.nodeid + "::" + item.originalname:
            item._id = item._id.with_params(label)
