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
