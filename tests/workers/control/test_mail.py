"""Mail on failure and on success after failure, through a real SMTP server on loopback."""

import time

import pytest
from aiosmtpd.controller import Controller

from app.extensions import db
from app.services.run_lifecycle import finish_run
from tests.end_to_end.processes import free_port
from tests.jobs import every_minute, later
from workers.beat.scheduler import fire_due_jobs
from workers.control.mail import notify_run_finished


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def inbox(app):
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    app.config["ZDM_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    yield handler
    app.config["ZDM_SMTP_URL"] = ""
    controller.stop()


def finished_run(job, state, error=None):
    db.session.refresh(job)
    run = fire_due_jobs(later(job))[0]
    run.state = "running"
    finish_run(run, state, error)
    db.session.commit()
    return run


def wait_for(inbox, count):
    deadline = time.monotonic() + 5
    while len(inbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return inbox.messages


def test_failed_run_mails_every_address(register, inbox):
    job = register(mailEvent="ops@example.com, dba@example.com", **every_minute())
    run = finished_run(job, "failed", "the source /dev/sda1 cannot be read")

    assert notify_run_finished(run.id) == "failed"

    [(recipients, content)] = wait_for(inbox, 1)
    assert recipients == ["ops@example.com", "dba@example.com"]
    assert "FAILED" in content and "the source /dev/sda1 cannot be read" in content


def test_success_after_failure_mails_once_and_plain_success_does_not(register, inbox):
    job = register(mailEvent="ops@example.com", **every_minute())
    failed = finished_run(job, "failed", "disk full")
    recovered = finished_run(job, "success")
    again = finished_run(job, "success")

    results = [notify_run_finished(r.id) for r in (failed, recovered, again)]

    assert results == ["failed", "recovered", None]
    messages = wait_for(inbox, 2)
    assert len(messages) == 2 and "succeeded again" in messages[1][1]


def test_no_mail_without_addresses(register, inbox):
    job = register(**every_minute())
    run = finished_run(job, "failed", "boom")

    assert notify_run_finished(run.id) is None
    assert inbox.messages == []
