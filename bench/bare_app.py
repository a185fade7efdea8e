"""The anchor of `bench/api.py`: a bare Flask app with one JSON route, served by gunicorn
exactly as the product is (`gunicorn --bind ... --workers N --access-logfile - bare_app:app`,
working directory bench/)."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/api/v1/ping")
def ping():
    return jsonify(success=True, data={"status": "ok"}, message="ok")
