"""Beat: the process that turns job schedules into runs (`workers/beat/scheduler.py`)."""
