"""Stock flask-sse, as its README sets it up: the baseline every stream figure is compared to.

`gunicorn 'bench.baseline_app:create_app()'` under the same gunicorn settings as ours. Its
stream is `/stream?channel=<name>`; it reads `REDIS_URL` like our app.
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask_sse import sse

import settings


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["REDIS_URL"] = settings.current().redis.url
    app.register_blueprint(sse, url_prefix="/stream")
    app.add_url_rule("/healthz", "healthz", lambda: jsonify({"status": "ok"}))
    return app
