"""Flask: views with converters; the typed endpoint validates with Pydantic by hand."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from pydantic import ValidationError

from .common import HELLO, Item


def _flask() -> Flask:
    flask_app = Flask(__name__)
    # Keep keys in insertion order like every other framework here (Flask sorts by default).
    assert isinstance(flask_app.json, DefaultJSONProvider)
    flask_app.json.sort_keys = False
    return flask_app


app = _flask()


@app.get("/plaintext")
def plaintext() -> Response:
    return Response(HELLO, mimetype="text/plain")


@app.get("/json")
def json() -> Response:
    return jsonify({"message": HELLO})


@app.post("/typed/<int:item_id>")
def typed(item_id: int) -> Response | tuple[Response, int]:
    q = request.args.get("q")
    limit = request.args.get("limit", type=int)
    if q is None or limit is None:
        return jsonify({"detail": "q and an integer limit are required"}), 422
    try:
        item = Item.model_validate_json(request.get_data())
    except ValidationError as exc:
        detail: Any = exc.errors(include_url=False)
        return jsonify({"detail": detail}), 422
    return jsonify(
        {"item_id": item_id, "q": q, "limit": limit, "name": item.name, "total": item.price * limit}
    )


def make_routes_app(count: int) -> Flask:
    routes_app = _flask()

    def make(route: int) -> None:
        def endpoint(id: int) -> Response:
            return jsonify({"route": route, "id": id})

        routes_app.add_url_rule(f"/r{route}/<int:id>", f"r{route}", endpoint, methods=["GET"])

    for route in range(count):
        make(route)
    return routes_app


routes_1000 = make_routes_app(1000)
routes_10 = make_routes_app(10)
