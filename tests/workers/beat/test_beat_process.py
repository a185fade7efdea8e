"""A real beat process (as the Procfile starts it) that stalls across fire times.

Beat outrun on purpose: stopped with SIGSTOP before a job's fire time and resumed after
the next one has passed too. Before, the first fire time was merged into the second with
no record at all; now it is recorded `missed` with the reason, and the second runs."""

import os
import signal
import time
from datetime import timedelta

import pytest

from app.timeutil import utcnow
from tests.end_to_end.processes import Process, celery, service_env, wait_until
from tests.jobs import every_minute, queued_messages, runs_of

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("beat-process")]


def test_a_stalled_beat_records_the_fire_time_it_reached_late(
    app, register, broker, database_url, redis_url, tmp_path
):
    # keep clear of a minute boundary, so the beat cannot fire on time before it stalls
    if (60 - utcnow().second) < 15:
        time.sleep(60 - utcnow().second + 1)
    job = register(**every_minute())
    first = job.next_run_at
    env = service_env(database_url, tmp_path, redis_url)
    beat = Process(
        "beat",
        celery("beat", "-S", "workers.beat.scheduler:ZdmScheduler", "-l", "INFO",
               f"--pidfile={tmp_path / 'beat.pid'}", f"--schedule={tmp_path / 'beat.db'}"),
        env,
        tmp_path,
    )  # fmt: skip
    try:
        wait_until(lambda: "beat: Starting" in beat.tail(), 30, what="beat start")
        os.killpg(beat.popen.pid, signal.SIGSTOP)
        assert utcnow() < first, "beat stalled only after the first fire time"
        second = first + timedelta(minutes=1)
        while utcnow() < second + timedelta(seconds=3):  # bounded: about two minutes
            time.sleep(1)
        os.killpg(beat.popen.pid, signal.SIGCONT)

        records = wait_until(lambda: len(runs_of(job.id)) >= 2 and runs_of(job.id), 60,
                             what="the records of both fire times")  # fmt: skip
        time.sleep(2)  # nothing more may come for these two fire times
    finally:
        os.killpg(beat.popen.pid, signal.SIGCONT)
        beat.stop()

    records = runs_of(job.id)
    assert [(r.state, r.scheduled_for) for r in records] == [
        ("missed", first),
        ("queued", second),
    ], beat.tail()
    assert records[0].error_message.startswith("beat was late")
    assert [m["run_id"] for m in queued_messages(broker)] == [records[1].id]
    assert "fired job" in beat.log_path.read_text()  # beat logs what it fired
