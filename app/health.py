"""Liveness and readiness probes."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from notifier.connection import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        get_redis().ping()
    except redis.exceptions.RedisError:
        return jsonify({"status": "unavailable", "redis": "down"}), 503
    return jsonify({"status": "ok", "redis": "up"}), 200
