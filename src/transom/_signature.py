"""Compile a handler's signature, once at start-up, into per-parameter extractors.

A :class:`Dependant` knows for each parameter where its value comes from (path, query, header,
cookie, JSON body, form, file, another dependency, the request itself) and holds a ready-made
validator for it. Per request, :meth:`Dependant.solve` only runs those closures: no
``inspect`` and no type-hint evaluation on the hot path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
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
                if self.embed_body:
                    kwargs.update(await self._solve_body(request))
                else:  # one model (or value) for the whole body: the common shape, inline
                    body, content_type = await request.body_and_media_type()
                    kwargs[self.body[0].name] = self.one_body(request, body, content_type)
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

    def one_body(self, request: Request, body: bytes, content_type: str) -> Any:
        """The value of the one body parameter that takes the whole body, validated by Pydantic
        straight from the bytes (no ``orjson.loads`` then ``validate_python``)."""
        spec = self.body[0]
        if not body:
            if not spec.required:
                return spec.default
            raise Invalid(
                [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
            )
        if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            raise HTTPException(415, "Unsupported media type: send the body as application/json")
        # Counted by byte value: bytes.count(b"[") costs twice as much as count(0x5B).
        # (A body shorter than the limit cannot hold more brackets than it: no count.)
        max_depth = request.max_json_depth
        if len(body) > max_depth and body.count(0x5B) + body.count(0x7B) > max_depth:
            parse_json(body, max_depth)  # raises 400 when nested too deep
        assert spec.adapter is not None
        try:
            # The adapter's validator itself (a documented attribute): ``validate_json`` of
            # the adapter is a Python wrapper that only forwards the defaults.
            return spec.adapter.validator.validate_json(body)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise HTTPException(400, "Malformed JSON in the request body") from None
            raise Invalid(convert_errors(exc, ["body"])) from None

    async def _solve_body(self, request: Request) -> dict[str, Any]:
        """The body parameters of an embedded body (``Body(embed=True)`` or several)."""
        body = await request.body()
        if not body and all(not spec.required for spec in self.body):
            return {spec.name: spec.default for spec in self.body}
        content_type = request.content_type
        if content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            raise HTTPException(415, "Unsupported media type: send the body as application/json")
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


def _validator(adapter: TypeAdapter[Any] | None, loc: list[str | int]) -> Callable[[Any], Any]:
    """Validate one raw value with ``adapter``; errors become :class:`Invalid` at ``loc``."""

    def validate(raw: Any) -> Any:
        if adapter is None:
            return raw
        try:
            return adapter.validate_python(raw)
        except ValidationError as exc:
            raise Invalid(convert_errors(exc, loc)) from None

    return validate


def _is_plain(spec: ParamSpec) -> bool:
    """The adapter is the bare type: no constraints (``Query(gt=0)``, ``Field(max_length=3)``
    in ``Annotated``) nor validators that a shortcut past it would skip."""
    return not spec.metadata and not (spec.marker is not None and spec.marker.constraints)


def _make_extractor(spec: ParamSpec) -> Extractor:
    location, alias, adapter = spec.location, spec.alias, spec.adapter
    required, default = spec.required, spec.default
    mutable_default = isinstance(default, list | dict | set)
    loc: list[str | int] = [location, alias]

    validate = _validator(adapter, loc)

    plain = _is_plain(spec)
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


# -- the one-pass solver -----------------------------------------------------------------------

Solver = Callable[[Request, dict[str, Any]], Awaitable[dict[str, Any]]]


def fast_solver(dependant: Dependant) -> Solver | None:
    """A one-pass :meth:`Dependant.solve` for the common shape, or ``None``.

    The shape: no dependencies (so no per-request cache nor clean-up to run), no form, at most
    one body parameter taking the whole JSON body. The solver is generated as straight-line
    code for the route, as :mod:`dataclasses` writes ``__init__``: plain ``str``/``int`` query
    parameters and typed path parameters are converted inline (no call, no loop over specs),
    the query string is parsed once, the body and its media type come from one coroutine and
    the body bytes go to the model's validator directly. Every other parameter goes through
    its extractor, as in :meth:`Dependant.solve`.

    It answers exactly as :meth:`Dependant.solve`: the same values, the same errors in the same
    order (declaration order, then the body's), the same 400/413/415 for a bad body; a
    parameter with constraints or validators goes through its full adapter, as there. The
    generated source holds no name, alias or value from the handler: they are looked up in
    the function's namespace (``alias_3``), so no annotation or alias can inject code.
    """
    if dependant.deps or dependant.form or dependant.embed_body:
        return None
    namespace: dict[str, Any] = {"Invalid": Invalid, "_missing": _missing}
    lines = ["async def solve(request, path):", "    errors = None"]
    results: list[str] = []  # "name_i: value_i" entries of the returned dict
    extractors = dict(dependant.simple)
    specs = [s for s in dependant.params if s.location not in ("body", "form", "file")]
    if any(_plain_query(spec) for spec in specs):
        # The first value of each name, as ``QueryParams.get`` reads it, less a call each.
        lines.append("    query = request.query.first_values()")
    for i, spec in enumerate(specs):
        namespace[f"name_{i}"] = spec.name
        namespace[f"alias_{i}"] = spec.alias
        namespace[f"default_{i}"] = spec.default
        namespace[f"validate_{i}"] = _validator(spec.adapter, [spec.location, spec.alias])
        namespace[f"extract_{i}"] = extractors[spec.name]
        value = f"value_{i}"
        results.append(f"name_{i}: {value}")
        lines.append("    try:")
        inner = _strip_optional(spec.annotation)
        if _plain_query(spec):
            lines += [
                f"        {value} = query.get(alias_{i})",
                f"        if {value} is None:",
                f"            raise _missing('query', alias_{i})"
                if spec.required
                else f"            {value} = default_{i}",
            ]
            if inner is int:  # what the int shortcut of the extractor does, inline
                lines += [
                    f"        elif {value}.isascii() and {value}.isdigit() and len({value}) < 19:",
                    f"            {value} = int({value})",
                    "        else:",
                    f"            {value} = validate_{i}({value})",
                ]
        elif _typed_path(spec):
            namespace[f"type_{i}"] = inner
            lines += [
                f"        {value} = path[alias_{i}]",
                f"        if type({value}) is not type_{i}:",
                f"            {value} = validate_{i}({value})",
            ]
        else:
            lines.append(f"        {value} = extract_{i}(request, path)")
        lines += ["    except Invalid as exc:", "        errors = (errors or []) + exc.errors"]
    if dependant.body:
        namespace["body_name"] = dependant.body[0].name
        namespace["one_body"] = dependant.one_body
        results.append("body_name: body_value")
        lines += [
            "    try:",
            "        body, content_type = await request.body_and_media_type()",
            "        body_value = one_body(request, body, content_type)",
            "    except Invalid as exc:",
            "        errors = (errors or []) + exc.errors",
        ]
    for k, name in enumerate(dependant.request_names):
        namespace[f"request_name_{k}"] = name
        results.append(f"request_name_{k}: request")
    lines += [
        "    if errors:",
        "        raise Invalid(errors)",
        "    return {" + ", ".join(results) + "}",
    ]
    exec(_compiled("\n".join(lines)), namespace)
    solve: Solver = namespace["solve"]
    return solve


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> types.CodeType:
    """The code of a generated solver. Routes of the same shape share one source (it names
    only slots of the namespace): compiling it once keeps a 1,000-route app's start-up from
    paying for 1,000 compilations (about 70 µs each)."""
    return compile(source, "<transom solver>", "exec")


def _plain_query(spec: ParamSpec) -> bool:
    """A query parameter of a bare ``str`` or ``int`` (``Optional`` too): converted inline."""
    return (
        spec.location == "query"
        and _strip_optional(spec.annotation) in (str, int)
        and _is_plain(spec)
        and not isinstance(spec.default, list | dict | set)  # its extractor copies it
    )


def _typed_path(spec: ParamSpec) -> bool:
    """A path parameter of a class the converter's value may already be: kept as it is."""
    inner = _strip_optional(spec.annotation)
    return (
        spec.location == "path"
        and isinstance(inner, type)
        and inner not in (Any, inspect.Parameter.empty)
        and _is_plain(spec)
    )
