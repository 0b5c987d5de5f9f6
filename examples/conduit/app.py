"""The RealWorld "Conduit" backend API (what `transom run` and `transom db ...` load here).

`make conduit` applies the migrations and serves it on http://127.0.0.1:8000/api; the OpenAPI
document is at /openapi.json and its browser at /docs. See README.md.
"""

from conduit_api.main import app

__all__ = ["app"]

if __name__ == "__main__":
    app.run()
