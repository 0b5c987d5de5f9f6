"""The AsyncAPI 3.0 document (/asyncapi.json) of WebSocket routes and declared channels.

No package on PyPI ships the AsyncAPI 3.0 JSON Schema, so :func:`check_asyncapi_30` checks
the structure the specification requires (required fields, allowed fields of channels,
parameters, operations and the ``ws`` binding, every ``$ref`` resolving, the address
parameters matching, operation messages belonging to their channel, payloads being valid
JSON Schema). The tests also talk to the routes: what they accept and send matches the
documented payloads.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel

from transom import App, Header, Path, Router, Settings, WebSocket
from transom.realtime import Channels, ChannelSpec

KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")
CHANNEL_FIELDS = {
    "address",
    "messages",
    "title",
    "summary",
    "description",
    "servers",
    "parameters",
    "tags",
    "externalDocs",
    "bindings",
}
OPERATION_FIELDS = {
    "action",
    "channel",
    "title",
    "summary",
    "description",
    "security",
    "tags",
    "externalDocs",
    "bindings",
    "traits",
    "messages",
    "reply",
}
PARAMETER_FIELDS = {"enum", "default", "description", "examples", "location"}
MESSAGE_FIELDS = {
    "headers",
    "payload",
    "correlationId",
    "contentType",
    "name",
    "title",
    "summary",
    "description",
    "tags",
    "externalDocs",
    "bindings",
    "examples",
    "traits",
}
WS_BINDING_FIELDS = {"method", "query", "headers", "bindingVersion"}


def _pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), ref
        assert part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def check_asyncapi_30(document: dict[str, Any]) -> None:
    """Fail unless ``document`` has the structure AsyncAPI 3.0.0 requires."""
    assert document["asyncapi"] == "3.0.0"
    info = document["info"]
    assert isinstance(info["title"], str)
    assert isinstance(info["version"], str)
    assert set(document) <= {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    }
    for ref in _refs(document):
        _pointer(document, ref)
    components = document.get("components", {})
    for name, message in components.get("messages", {}).items():
        assert KEY.match(name), name
        assert set(message) <= MESSAGE_FIELDS, message
        schema = {**message["payload"], "components": components}
        jsonschema.Draft7Validator.check_schema(schema)
    for name in components.get("schemas", {}):
        assert KEY.match(name), name
    for key, channel in document.get("channels", {}).items():
        assert KEY.match(key), key
        assert set(channel) <= CHANNEL_FIELDS, channel
        names = set(re.findall(r"\{([^{}]+)\}", channel["address"]))
        assert names == set(channel.get("parameters", {})), (key, names)
        for parameter in channel.get("parameters", {}).values():
            assert set(parameter) <= PARAMETER_FIELDS, parameter
            assert all(isinstance(v, str) for v in parameter.get("enum", []))
        for message in channel.get("messages", {}).values():
            assert set(message) == {"$ref"}  # to components/messages
        ws = channel.get("bindings", {}).get("ws")
        if ws is not None:
            assert set(ws) <= WS_BINDING_FIELDS
            assert ws["method"] in ("GET", "POST")
            for field in ("query", "headers"):
                if field in ws:
                    assert ws[field]["type"] == "object"
        for tag in channel.get("tags", []):
            assert isinstance(tag["name"], str)
    for key, operation in document.get("operations", {}).items():
        assert KEY.match(key), key
        assert set(operation) <= OPERATION_FIELDS, operation
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        for message in operation.get("messages", []):
            # Operation messages must be messages of the operation's channel.
            assert message["$ref"].startswith(channel_ref + "/messages/"), (key, message)


# -- an app ---------------------------------------------------------------------------------------


class Say(BaseModel):
    """What a client says in a room."""

    text: str


class Said(BaseModel):
    text: str
    by: str


class Presence(BaseModel):
    who: str
    online: bool


def build() -> tuple[App, Channels, ChannelSpec[Said]]:
    app = App(Settings(title="Chat", version="3.1"))
    channels = Channels(app)
    rooms = channels.declare("room:{room}", Said, summary="What is said in a room")
    channels.declare("presence", Presence)
    chat = Router("/ws", tags=["chat"])

    @chat.websocket("/rooms/{room}", receives=Say, sends=[Said, Presence])
    async def room(
        ws: WebSocket,
        room: Annotated[str, Path(description="The room's name")],
        x_nick: Annotated[str, Header()],
        mode: Literal["live", "replay"] = "live",
    ) -> None:
        """Chat in a room.

        Every message is echoed to the room, the sender included.
        """
        await ws.accept()
        say = await ws.receive_model(Say)
        await ws.send_json(Said(text=say.text, by=x_nick))
        await ws.send_json(Presence(who=x_nick, online=mode == "live"))

    @app.websocket("/echo/{n:int}")
    async def echo(ws: WebSocket, n: int) -> None:
        await ws.accept()
        await ws.send_text(str(n))

    @app.websocket("/internal", include_in_schema=False)
    async def internal(ws: WebSocket) -> None:
        await ws.accept()

    app.include_router(chat)
    return app, channels, rooms


def test_the_document_describes_routes_and_channels() -> None:
    app, _, _ = build()
    with app.test_client() as client:
        response = client.get("/asyncapi.json")
        openapi = client.get("/openapi.json").json()
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    check_asyncapi_30(document)
    assert document["info"] == {"title": "Chat", "version": "3.1"}
    channels = document["channels"]
    assert set(channels) == {"room", "echo", "channel_room_room", "channel_presence"}

    room = channels["room"]
    assert room["address"] == "/ws/rooms/{room}"
    assert room["summary"] == "Chat in a room."
    assert room["description"] == "Every message is echoed to the room, the sender included."
    assert room["tags"] == [{"name": "chat"}]
    assert room["parameters"] == {"room": {"description": "The room's name"}}
    ws = room["bindings"]["ws"]
    assert ws["query"]["properties"]["mode"] == {
        "enum": ["live", "replay"],
        "type": "string",
        "default": "live",
    }
    assert "required" not in ws["query"]
    assert ws["headers"]["required"] == ["x-nick"]
    assert set(room["messages"]) == {"Say", "Said", "Presence"}
    operations = document["operations"]
    assert operations["room_receive"]["action"] == "receive"  # the app receives what clients send
    assert operations["room_receive"]["messages"] == [{"$ref": "#/channels/room/messages/Say"}]
    assert [m["$ref"].rsplit("/", 1)[1] for m in operations["room_send"]["messages"]] == [
        "Said",
        "Presence",
    ]
    messages = document["components"]["messages"]
    assert messages["Say"]["summary"] == "What a client says in a room."
    assert messages["Say"]["payload"] == {"$ref": "#/components/schemas/Say"}
    # A route without declared messages is still documented, with its parameters.
    assert channels["echo"]["parameters"] == {"n": {"description": "An integer"}}
    assert "messages" not in channels["echo"]
    assert not any(c["address"] == "/internal" for c in channels.values())
    # Declared channels: the pattern, its parameters, and what the app publishes there.
    declared = channels["channel_room_room"]
    assert declared["address"] == "room:{room}"
    assert declared["parameters"] == {"room": {}}
    assert declared["summary"] == "What is said in a room"
    assert operations["channel_room_room_publish"]["action"] == "send"
    assert channels["channel_presence"]["messages"] == {
        "Presence": {"$ref": "#/components/messages/Presence"}
    }
    # WebSocket routes stay out of the OpenAPI document.
    assert not any("rooms" in path or "echo" in path for path in openapi["paths"])


def test_the_route_speaks_what_the_document_says() -> None:
    app, _, _ = build()
    with app.test_client() as client:
        document = client.get("/asyncapi.json").json()
        components = document["components"]

        def payload(name: str) -> dict[str, Any]:
            return {**components["messages"][name]["payload"], "components": components}

        sent = {"text": "hello"}
        jsonschema.validate(sent, payload("Say"))
        with client.websocket_connect("/ws/rooms/lobby", headers={"X-Nick": "ann"}) as ws:
            ws.send_json(sent)
            said = ws.receive_json()
            presence = ws.receive_json()
    jsonschema.validate(said, payload("Said"))
    jsonschema.validate(presence, payload("Presence"))
    assert said == {"text": "hello", "by": "ann"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"text": 1}, payload("Say"))


@pytest.mark.anyio
async def test_a_declared_channel_names_the_channels_it_documents() -> None:
    _, channels, rooms = build()
    assert rooms.parameters == ["room"]
    assert rooms.name(room=7) == "room:7"
    with pytest.raises(TypeError, match="missing"):
        rooms.name()
    with pytest.raises(TypeError, match="unknown"):
        rooms.name(room=1, floor=2)
    with pytest.raises(ValueError, match="bad parameter"):
        channels.declare("room:{1st}", Said)
    with pytest.raises(ValueError, match="unbalanced"):
        channels.declare("room:{room", Said)
    async with channels.subscribe(rooms.name(room=7)) as messages:
        await channels.publish(rooms.name(room=7), Said(text="hi", by="bob"))
        assert (await messages.get()).data == {"text": "hi", "by": "bob"}
    await channels.close()


def test_the_document_can_be_turned_off_and_follows_new_routes() -> None:
    off = App(Settings(asyncapi_url=""))
    with off.test_client() as client:
        assert client.get("/asyncapi.json").status_code == 404
        assert client.get("/openapi.json").status_code == 200
    elsewhere = App(Settings(asyncapi_url="/api/asyncapi.json", openapi_url=""))

    @elsewhere.websocket("/one")
    async def one(ws: WebSocket) -> None:
        await ws.accept()

    with elsewhere.test_client() as client:
        first = client.get("/api/asyncapi.json").json()

        @elsewhere.websocket("/two", sends=str)
        async def two(ws: WebSocket) -> None:
            await ws.accept()

        second = client.get("/api/asyncapi.json").json()
    check_asyncapi_30(second)
    assert set(first["channels"]) == {"one"}
    assert set(second["channels"]) == {"one", "two"}
    assert second["components"]["messages"]["str"]["payload"] == {"type": "string"}


def test_a_message_type_without_schema_is_refused_at_declaration() -> None:
    app = App()

    class NotAModel:
        pass

    with pytest.raises(Exception, match="NotAModel"):

        @app.websocket("/x", receives=NotAModel)
        async def x(ws: WebSocket) -> None:
            await ws.accept()
