"""Compile a handler's signature, once at start-up, into per-parameter extractors.

A :class:`Dependant` knows for each parameter where its value comes from (path, query, header,
cookie, JSON body, form, file, another dependency, the request itself) and holds a ready-made
validator for it. Per request, :meth:`Dependant.solve` only runs those closures: no
``inspect`` and no type-hint evaluation on the hot path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import types
import typing
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from transom._concurrency import run_sync
from transom.datastructures import UploadFile
from transom.exceptions import HTTPException
from transom.params import REQUIRED, Body, Depends, Param
from transom.requests import Request, parse_json

Extractor = Callable[[Request, dict[str, Any]], Any]
_JSON_TYPES = ("application/json",)


class Invalid(Exception):
    """Validation errors for one or more parameters (collected, then answered with 422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _missing(loc: str, alias: str) -> Invalid:
    return Invalid(
        [{"type": "missing", "loc": [loc, alias], "msg": "Field required", "input": None}]
    )


def convert_errors(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    return [
        {
            "type": e["type"],
            "loc": [*prefix, *e["loc"]],
            "msg": e["msg"],
            "input": _json_safe(e.get("input")),
        }
        for e in exc.errors(include_url=False, include_context=False)
    ]


def _json_safe(value: Any) -> Any:
    # The 422 body echoes the input, and an input is not always JSON (an upload sent where a
    # text field was expected, raw bytes): describe those instead of failing the error page.
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)  # beyond what orjson writes
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, UploadFile):
        return {"filename": value.filename, "content_type": value.content_type}
    return repr(value)


@dataclasses.dataclass(slots=True)
class ParamSpec:
    """What the compiler learned about one parameter; kept for OpenAPI generation."""

    name: str
    location: str
    alias: str
    annotation: Any
    required: bool
    default: Any
    marker: Param | None = None
    is_list: bool = False
    is_model: bool = False
    adapter: TypeAdapter[Any] | None = None
    #: What ``Annotated[...]`` carried besides the marker (``Field(gt=0)``, validators): the
    #: adapter applies it, so a value is never taken without it.
    metadata: tuple[Any, ...] = ()


@dataclasses.dataclass(slots=True)
class Dependant:
    call: Callable[..., Any]
    kind: str  # "async" | "sync" | "async_gen" | "sync_gen"
    params: list[ParamSpec]
    simple: list[tuple[str, Extractor]]
    deps: list[tuple[str, Depends, Dependant]]
    request_names: list[str]
    body: list[ParamSpec]
    embed_body: bool
    form: list[ParamSpec]
    use_cache: bool = True

    def walk(self) -> typing.Iterator[Dependant]:
        yield self
        for _, _, sub in self.deps:
            yield from sub.walk()

    @property
    def needs_context(self) -> bool:
        return any(d.deps for d in self.walk())

    async def solve(
        self, request: Request, path: dict[str, Any], ctx: SolveContext | None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] | None = None
        for name, extract in self.simple:
            try:
                kwargs[name] = extract(request, path)
            except Invalid as exc:
                errors = (errors or []) + exc.errors
        if self.body:
            try:
                kwargs.update(await self._solve_body(request))
            except Invalid as exc:
                errors = (errors or []) + exc.errors
        if self.form:
            try:
                kwargs.update(await self._solve_form(request))
            except Invalid as exc:
                errors = (errors or []) + exc.errors
        for name, marker, sub in self.deps:
            assert ctx is not None
            try:
                kwargs[name] = await ctx.resolve(marker, sub, request, path)
            except Invalid as exc:
                errors = (errors or []) + exc.errors
        for name in self.request_names:
            kwargs[name] = request
        if errors:
            raise Invalid(errors)
        return kwargs

    async def _solve_body(self, request: Request) -> dict[str, Any]:
        content_type = request.content_type
        body = await request.body()
        if not body:
            if all(not spec.required for spec in self.body):
                return {spec.name: spec.default for spec in self.body}
            if not self.embed_body:
                raise Invalid(
                    [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
                )
        if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            raise HTTPException(415, "Unsupported media type: send the body as application/json")
        limits = request._limits()
        if not self.embed_body:
            spec = self.body[0]
            assert spec.adapter is not None
            # Counted by byte value: bytes.count(b"[") costs twice as much as count(0x5B).
            if body.count(0x5B) + body.count(0x7B) > limits[4]:
                parse_json(body, limits[4])  # raises 400 when nested too deep
            try:
                return {spec.name: spec.adapter.validate_json(body)}
            except ValidationError as exc:
                if any(e["type"] == "json_invalid" for e in exc.errors()):
                    raise HTTPException(400, "Malformed JSON in the request body") from None
                raise Invalid(convert_errors(exc, ["body"])) from None
        data = await request.json()
        if not isinstance(data, dict):
            raise Invalid(
                [
                    {
                        "type": "dict_type",
                        "loc": ["body"],
                        "msg": "Input should be an object",
                        "input": None,
                    }
                ]
            )
        out: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for spec in self.body:
            if spec.alias not in data:
                if spec.required:
                    errors.extend(_missing("body", spec.alias).errors)
                else:
                    out[spec.name] = spec.default
                continue
            assert spec.adapter is not None
            try:
                out[spec.name] = spec.adapter.validate_python(data[spec.alias])
            except ValidationError as exc:
                errors.extend(convert_errors(exc, ["body", spec.alias]))
        if errors:
            raise Invalid(errors)
        return out

    async def _solve_form(self, request: Request) -> dict[str, Any]:
        content_type = request.content_type
        if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
            raise HTTPException(415, "Unsupported media type: send the body as a form")
        form = await request.form()
        out: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for spec in self.form:
            assert spec.adapter is not None
            if spec.is_model:
                data: Any = _multi_dict_for_model(form.multi_items(), spec.annotation)
                prefix: list[str | int] = ["body"]
            else:
                values = form.getlist(spec.alias)
                if not values or (spec.location == "file" and values == [""]):
                    if spec.required:
                        errors.extend(_missing("body", spec.alias).errors)
                    else:
                        out[spec.name] = spec.default
                    continue
                data = values if spec.is_list else values[0]
                prefix = ["body", spec.alias]
                if spec.location == "file" and _wants_bytes(spec.annotation):
                    data = [await f.read() if isinstance(f, UploadFile) else f for f in values]
                    data = data if spec.is_list else data[0]
            try:
                out[spec.name] = spec.adapter.validate_python(data)
            except ValidationError as exc:
                errors.extend(convert_errors(exc, prefix))
        if errors:
            raise Invalid(errors)
        return out


def _wants_bytes(annotation: Any) -> bool:
    inner = _strip_optional(annotation)
    if get_origin(inner) is list:
        inner = get_args(inner)[0]
    return inner is bytes


def _multi_dict_for_model(items: list[tuple[str, Any]], model: Any) -> dict[str, Any]:
    list_fields = set()
    if isinstance(model, type) and issubclass(model, BaseModel):
        list_fields = {
            (f.alias or n)
            for n, f in model.model_fields.items()
            if get_origin(_strip_optional(f.annotation)) in (list, set, tuple, frozenset)
        }
    data: dict[str, Any] = {}
    for key, value in items:
        if key in list_fields:
            data.setdefault(key, []).append(value)
        else:
            data.setdefault(key, value)
    return data


class SolveContext:
    """Per-request dependency cache and the stack of generator dependencies to clean up."""

    __slots__ = ("cache", "compile", "exits", "overrides")

    def __init__(
        self,
        overrides: dict[Callable[..., Any], Callable[..., Any]],
        compile: Callable[[Callable[..., Any]], Dependant],
    ) -> None:
        self.cache: dict[Callable[..., Any], Any] = {}
        self.exits: list[tuple[str, Any]] = []
        self.overrides = overrides
        self.compile = compile

    async def resolve(
        self, marker: Depends, dependant: Dependant, request: Request, path: dict[str, Any]
    ) -> Any:
        original = dependant.call
        if self.overrides and original in self.overrides:
            dependant = self.compile(self.overrides[original])
        if marker.use_cache and original in self.cache:
            return self.cache[original]
        kwargs = await dependant.solve(request, path, self)
        call = dependant.call
        kind = dependant.kind
        if kind == "async":
            value = await call(**kwargs)
        elif kind == "sync":
            value = await run_sync(call, **kwargs)
        elif kind == "async_gen":
            agen = call(**kwargs)
            value = await agen.__anext__()
            self.exits.append(("async", agen))
        else:
            gen = call(**kwargs)
            value = await run_sync(next, gen)
            self.exits.append(("sync", gen))
        if marker.use_cache:
            self.cache[original] = value
        return value

    async def close(self, exc: BaseException | None) -> None:
        """Finish generator dependencies, newest first, throwing ``exc`` in at their ``yield``."""
        while self.exits:
            kind, gen = self.exits.pop()
            if kind == "async":
                await _close_async(gen, exc)
            else:
                await run_sync(_close_sync, gen, exc)


async def _close_async(agen: AsyncGenerator[Any, None], exc: BaseException | None) -> None:
    try:
        if exc is None:
            await agen.__anext__()
        else:
            await agen.athrow(exc)
    except StopAsyncIteration:
        return
    except BaseException as raised:
        if raised is exc:
            return
        raise
    raise RuntimeError(f"dependency {agen!r} yielded more than once")


def _close_sync(gen: Generator[Any, None, None], exc: BaseException | None) -> None:
    try:
        if exc is None:
            next(gen)
        else:
            gen.throw(exc)
    except StopIteration:
        return
    except BaseException as raised:
        if raised is exc:
            return
        raise
    raise RuntimeError(f"dependency {gen!r} yielded more than once")


# -- compilation -------------------------------------------------------------------------------


def _call_kind(call: Callable[..., Any]) -> str:
    target = call
    if not (inspect.isfunction(target) or inspect.ismethod(target)) and not isinstance(
        target, type
    ):
        dunder = getattr(target, "__call__", None)  # noqa: B004 - callable instances
        if dunder is not None:
            target = dunder
    if inspect.isasyncgenfunction(target):
        return "async_gen"
    if inspect.isgeneratorfunction(target):
        return "sync_gen"
    if inspect.iscoroutinefunction(target):
        return "async"
    return "sync"


def _type_hints(call: Callable[..., Any], localns: dict[str, Any] | None) -> dict[str, Any]:
    target: Any = getattr(call, "__init__") if isinstance(call, type) else call  # noqa: B009
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(target, "__call__", target)  # noqa: B004
    try:
        return typing.get_type_hints(target, localns=localns, include_extras=True)
    except NameError as exc:
        name = getattr(call, "__qualname__", repr(call))
        raise TypeError(
            f"cannot resolve the annotations of {name} ({where(call)}): {exc}. Define the "
            "types it names at module level so they can be resolved when the app starts."
        ) from exc


def where(call: Callable[..., Any]) -> str:
    """``file:line`` where a handler or dependency is defined, for start-up errors."""
    target: Any = getattr(call, "__init__") if isinstance(call, type) else call  # noqa: B009
    with contextlib.suppress(ValueError):  # a cycle of __wrapped__
        target = inspect.unwrap(target)
    if not inspect.isroutine(target):  # an instance with __call__
        target = type(target).__call__
    code = getattr(target, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else repr(call)


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _split_annotated(annotation: Any) -> tuple[Any, Param | Depends | None, list[Any]]:
    """Separate our marker from ``Annotated`` metadata; other metadata stays with the type."""
    if get_origin(annotation) is not Annotated:
        return annotation, None, []
    base, *metadata = get_args(annotation)
    marker: Param | Depends | None = None
    rest: list[Any] = []
    for item in metadata:
        if isinstance(item, Param | Depends):
            marker = item
        else:
            rest.append(item)
    return base, marker, rest


def _is_model_type(annotation: Any) -> bool:
    inner = _strip_optional(annotation)
    return isinstance(inner, type) and (
        issubclass(inner, BaseModel) or dataclasses.is_dataclass(inner)
    )


def _is_upload(annotation: Any) -> bool:
    inner = _strip_optional(annotation)
    if get_origin(inner) is list:
        inner = get_args(inner)[0]
    return inner is UploadFile


def _is_sequence(annotation: Any) -> bool:
    return get_origin(_strip_optional(annotation)) in (list, set, tuple, frozenset)


def _adapter(annotation: Any, metadata: list[Any], marker: Param | None) -> TypeAdapter[Any]:
    extra = list(metadata)
    if marker is not None and marker.constraints:
        extra.append(Field(**marker.constraints))
    target: Any = Annotated[(annotation, *extra)] if extra else annotation
    return TypeAdapter(target, config=None if _is_model_type(annotation) else _ARBITRARY)


_ARBITRARY: Any = {"arbitrary_types_allowed": True}


def compile_dependant(
    call: Callable[..., Any],
    path_names: frozenset[str],
    localns: dict[str, Any] | None = None,
) -> Dependant:
    """Analyse ``call``'s signature into a :class:`Dependant` (recursively for dependencies)."""
    signature = inspect.signature(call)
    hints = _type_hints(call, localns)
    dependant = Dependant(
        call=call,
        kind=_call_kind(call),
        params=[],
        simple=[],
        deps=[],
        request_names=[],
        body=[],
        embed_body=False,
        form=[],
    )
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation, marker, metadata = _split_annotated(hints.get(param.name, Any))
        default = REQUIRED if param.default is param.empty else param.default
        if marker is None and isinstance(default, Param | Depends):
            marker, default = default, REQUIRED
        if isinstance(marker, Depends):
            target = marker.dependency or annotation
            if not callable(target):
                raise TypeError(
                    f"Depends() on {param.name!r} needs a callable or a class annotation"
                )
            sub = compile_dependant(target, path_names, localns)
            sub.use_cache = marker.use_cache
            dependant.deps.append((param.name, marker, sub))
            continue
        if isinstance(annotation, type) and issubclass(annotation, Request):
            dependant.request_names.append(param.name)
            continue
        if marker is not None and marker.default is not REQUIRED:
            default = marker.default
        spec = _make_spec(param.name, annotation, metadata, marker, default, path_names)
        dependant.params.append(spec)
        if spec.location == "body":
            dependant.body.append(spec)
        elif spec.location in ("form", "file"):
            dependant.form.append(spec)
        else:
            dependant.simple.append((spec.name, _make_extractor(spec)))
    if dependant.body and dependant.form:
        raise TypeError(f"{call!r} declares both a JSON body and form fields")
    if len(dependant.body) > 1 or any(
        isinstance(s.marker, Body) and s.marker.embed for s in dependant.body
    ):
        dependant.embed_body = True
    return dependant


def _make_spec(
    name: str,
    annotation: Any,
    metadata: list[Any],
    marker: Param | None,
    default: Any,
    path_names: frozenset[str],
) -> ParamSpec:
    if marker is not None:
        location = marker.location
    elif name in path_names:
        location = "path"
    elif _is_upload(annotation):
        location = "file"
    elif (
        _is_model_type(annotation)
        or _strip_optional(annotation) in (dict, list)
        or get_origin(_strip_optional(annotation)) is dict
    ):
        location = "body"
    else:
        location = "query"
    if (
        location == "path"
        and name not in path_names
        and not (marker and marker.alias in path_names)
    ):
        raise TypeError(f"path parameter {name!r} is not in the route path")
    alias = marker.alias if marker is not None and marker.alias else name
    if (
        location == "header"
        and getattr(marker, "convert_underscores", True)
        and not (marker and marker.alias)
    ):
        alias = name.replace("_", "-")
    is_model = location in ("query", "form") and _is_model_type(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        adapter: TypeAdapter[Any] | None = None if location != "body" else TypeAdapter(Any)
    else:
        adapter = _adapter(annotation, metadata, marker)
    return ParamSpec(
        name=name,
        location=location,
        alias=alias,
        annotation=annotation,
        required=default is REQUIRED,
        default=None if default is REQUIRED else default,
        marker=marker,
        is_list=_is_sequence(annotation),
        is_model=is_model,
        adapter=adapter,
        metadata=tuple(metadata),
    )


def _fast_scalar(annotation: Any) -> Callable[[str], Any] | None:
    """A converter for the commonest types that skips Pydantic when the input is clean."""
    if annotation is str:
        return str
    if annotation is int:

        def to_int(raw: str) -> int:
            if raw.isascii() and raw.isdigit() and len(raw) < 19:
                return int(raw)
            raise ValueError

        return to_int
    return None


def _make_extractor(spec: ParamSpec) -> Extractor:
    location, alias, adapter = spec.location, spec.alias, spec.adapter
    required, default = spec.required, spec.default
    mutable_default = isinstance(default, list | dict | set)
    loc: list[str | int] = [location, alias]

    def validate(raw: Any) -> Any:
        if adapter is None:
            return raw
        try:
            return adapter.validate_python(raw)
        except ValidationError as exc:
            raise Invalid(convert_errors(exc, loc)) from None

    # The adapter is the bare type: no constraints (``Query(gt=0)``, ``Field(max_length=3)``
    # in ``Annotated``) nor validators that a shortcut past it would skip.
    plain = not spec.metadata and not (spec.marker is not None and spec.marker.constraints)
    fast = _fast_scalar(_strip_optional(spec.annotation)) if plain else None

    def finish(raw: Any) -> Any:
        if fast is not None:
            try:
                return fast(raw)
            except ValueError:
                pass
        return validate(raw)

    def fallback() -> Any:
        if required:
            raise _missing(location, alias)
        return default.copy() if mutable_default else default

    if location == "path":
        annotation = _strip_optional(spec.annotation)
        if annotation in (Any, inspect.Parameter.empty):
            return lambda request, path: path[alias]

        if not plain:  # the converter's value still has the declared constraints to meet
            return lambda request, path: validate(path[alias])

        def from_path(request: Request, path: dict[str, Any]) -> Any:
            value = path[alias]
            if type(value) is annotation:
                return value
            return validate(value)

        return from_path

    if location == "query" and spec.is_model:
        assert adapter is not None

        def query_model(request: Request, path: dict[str, Any]) -> Any:
            data = _multi_dict_for_model(request.query.multi_items(), spec.annotation)
            try:
                return adapter.validate_python(data)
            except ValidationError as exc:
                raise Invalid(convert_errors(exc, ["query"])) from None

        return query_model

    if location == "query":
        if spec.is_list:

            def query_list(request: Request, path: dict[str, Any]) -> Any:
                values = request.query.getlist(alias)
                return validate(values) if values else fallback()

            return query_list

        if fast is str:
            # A plain ``str``: the raw value is the answer (what ``finish`` would return, less
            # two calls per parameter).

            def query_str(request: Request, path: dict[str, Any]) -> Any:
                raw = request.query.get(alias)
                return fallback() if raw is None else raw

            return query_str

        def query(request: Request, path: dict[str, Any]) -> Any:
            raw = request.query.get(alias)
            return fallback() if raw is None else finish(raw)

        return query

    if location == "header":
        if spec.is_list:

            def header_list(request: Request, path: dict[str, Any]) -> Any:
                values = request.headers.getlist(alias)
                return validate(values) if values else fallback()

            return header_list

        def header(request: Request, path: dict[str, Any]) -> Any:
            raw = request.headers.get(alias)
            return fallback() if raw is None else finish(raw)

        return header

    if location == "cookie":

        def cookie(request: Request, path: dict[str, Any]) -> Any:
            raw = request.cookies.get(alias)
            return fallback() if raw is None else finish(raw)

        return cookie

    raise TypeError(f"unsupported parameter location {location!r}")
