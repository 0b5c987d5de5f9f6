"""The Transom bench apps with the one line every app with a login or a form adds:
``Security(app)`` (signed-cookie sessions, CSRF, CSP with nonces, HSTS on HTTPS), defaults on.

The load carries no cookie and the handlers never touch the session: what this measures is
what the secure defaults cost the requests that do not use them.
"""

from __future__ import annotations

from transom import App
from transom.security import Security

from .transom_app import make_app, make_routes_app


def secure(app: App) -> App:
    Security(app)
    return app


app = secure(make_app())
routes_1000 = secure(make_routes_app(1000))
routes_10 = secure(make_routes_app(10))
