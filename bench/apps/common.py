"""What every bench app shares: the request model and the expected answers."""

from __future__ import annotations

from pydantic import BaseModel

HELLO = "Hello, World!"
ROUTE_COUNTS = (10, 1000)


class Item(BaseModel):
    """The JSON body of ``POST /typed/{item_id}``."""

    name: str
    price: float
    tags: list[str] = []


#: The body of ``GET /html``: a small page, served as ``text/html`` (with Transom's security
#: battery, the response that gets a CSP nonce).
HTML = "<!doctype html><title>Hello</title><p>Hello, World!</p>"
