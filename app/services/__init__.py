"""Domain services shared by the API and the Celery side (beat uses `schedule`)."""
