"""The agent: a Celery worker for one protected server, consuming `zdm.server.<server>`.

- `settings.py`: which server, center and partitions this agent serves (from `config.py`).
- `presence.py`: registering the server and its partitions, and its heartbeat (`lastSeen`).
- `signals.py`: what the agent does when its worker starts and stops.
- `tasks.py`: the agent's Celery tasks; `runner.py`: a backup or restore from claim to outcome.
- `lease.py`: while the engine works, the run's progress and its lease.
- `verification.py`: checking a repository, and reconciling the database with it.
"""
