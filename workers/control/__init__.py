"""The control worker (queue `zdm.control`): sweeps for lost and unstarted runs
(`sweeps.py`), mail (`mail.py`), and its Celery tasks (`tasks.py`)."""
