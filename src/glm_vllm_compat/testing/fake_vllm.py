"""A fake ``vllm`` package reproducing the public surface of any recorded release.

The surfaces are the JSON files written by ``matrix/record.py`` (one per vLLM
release, read from the release's own sources).  :func:`installed` writes a tiny
``vllm`` package plus a ``vllm-<version>.dist-info`` into a directory, puts the
directory first on :data:`sys.path` and hides any real ``vllm`` modules until
the ``with`` block ends::

    from glm_vllm_compat.testing import fake_vllm

    with fake_vllm.installed("0.5.5", tmp_path) as fake:
        from vllm import LLM, SamplingParams
        LLM(model="m").generate("hi", SamplingParams(max_tokens=4))
        assert fake.calls[-1].qualname == "LLM.generate"

Every recorded method has exactly the recorded signature (``inspect.signature``
shows the release's parameter names, kinds and order; literal defaults are the
real values, other defaults are :class:`SourceDefault` placeholders) and the
recorded async-ness.  The methods are compiled from source with the recorded
parameters, so a call the real release would reject with ``TypeError`` is
rejected here too, and each accepted call is appended to :attr:`FakeVllm.calls`
with the explicitly passed arguments (``self``/``cls`` left out; an async
generator's call is recorded when its iteration starts, as its body runs then).
Nothing here imports vLLM or torch.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import enum
import importlib
import inspect
import json
import os
import re
import shutil
import sys
import types
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

__all__ = [
    "Call",
    "FakeTokenizer",
    "FakeVllm",
    "SourceDefault",
    "installed",
    "known_versions",
    "load_surface",
    "surfaces_dir",
]

ENV_MATRIX = "GLM_VLLM_COMPAT_MATRIX"
MARKER = ".glm-vllm-compat-fake"
Surface = dict[str, Any]
Record = dict[str, Any]

# ---------------------------------------------------------------------------
# Surfaces
# ---------------------------------------------------------------------------


def surfaces_dir() -> Path:
    """``matrix/surfaces``: from ``$GLM_VLLM_COMPAT_MATRIX`` or found above this file."""
    env = os.environ.get(ENV_MATRIX)
    if env:
        base = Path(env)
        return base / "surfaces" if (base / "surfaces").is_dir() else base
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "matrix" / "surfaces"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"matrix/surfaces not found above {__file__}; set {ENV_MATRIX} to the matrix directory"
    )


def _version_key(version: str) -> tuple[Any, ...]:
    parts = re.split(r"[.]", version)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def known_versions() -> list[str]:
    """Every recorded release, oldest first."""
    names = [p.stem for p in surfaces_dir().glob("*.json")]
    return sorted(names, key=_version_key)


def load_surface(version_or_path: str | os.PathLike[str]) -> Surface:
    """The recorded surface of a release (``"0.5.5"``) or of a JSON file path."""
    text = os.fspath(version_or_path)
    path = Path(text)
    if not (text.endswith(".json") or path.is_file()):
        path = surfaces_dir() / f"{text}.json"
    if not path.is_file():
        raise LookupError(f"no recorded vLLM surface {text!r} (looked for {path})")
    data: Surface = json.loads(path.read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------------------
# Values the fake hands out
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call of a fake method: ``qualname`` like ``"LLM.generate"``."""

    qualname: str
    arguments: dict[str, Any]


class SourceDefault:
    """Stands for a non-literal default (its source text is the ``repr``)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


class FakeTokenizer:
    """Byte-level toy tokenizer: ids are UTF-8 bytes + 3; 0 pad, 1 bos, 2 eos."""

    eos_token_id = 2
    bos_token_id = 1
    pad_token_id = 0

    def encode(self, text: str, add_special_tokens: bool = True, **_: Any) -> list[int]:
        return [b + 3 for b in text.encode("utf-8")]

    def decode(self, ids: Any, skip_special_tokens: bool = True, **_: Any) -> str:
        data = bytes(i - 3 for i in ids if i >= 3)
        return data.decode("utf-8", "replace")

    def __call__(self, text: str, **kwargs: Any) -> dict[str, list[int]]:
        return {"input_ids": self.encode(text, **kwargs)}


def _literal(source: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _signature_default(source: str | None) -> Any:
    if source is None:
        return inspect.Parameter.empty
    ok, value = _literal(source)
    return value if ok else SourceDefault(source)


_KINDS = {
    "positional_only": inspect.Parameter.POSITIONAL_ONLY,
    "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "var_positional": inspect.Parameter.VAR_POSITIONAL,
    "keyword_only": inspect.Parameter.KEYWORD_ONLY,
    "var_keyword": inspect.Parameter.VAR_KEYWORD,
}


def signature_of(params: list[Record]) -> inspect.Signature:
    """An :class:`inspect.Signature` from recorded parameters."""
    out = []
    for p in params:
        annotation = p.get("annotation")
        out.append(inspect.Parameter(
            p["name"], _KINDS[p["kind"]], default=_signature_default(p.get("default")),
            annotation=inspect.Parameter.empty if annotation is None else annotation))
    return inspect.Signature(out)


# ---------------------------------------------------------------------------
# The installed fake
# ---------------------------------------------------------------------------

_ACTIVE: dict[str, FakeVllm] = {}


@dataclass
class FakeVllm:
    """Handle on an installed fake: its release, its surface and the recorded calls."""

    surface: Surface
    root: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    calls: list[Call] = field(default_factory=list)
    _namespaces: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return str(self.surface["version"])

    def clear(self) -> None:
        """Forget the recorded calls."""
        self.calls.clear()

    def calls_to(self, qualname: str) -> list[Call]:
        return [c for c in self.calls if c.qualname == qualname]

    def namespaces(self) -> dict[str, dict[str, Any]]:
        """Module name -> the fake names defined there (built on first use)."""
        if self._namespaces is None:
            self._namespaces = _Builder(self).build()
        return self._namespaces

    def use_v1(self) -> bool:
        """Whether the release would run the V1 engine now (env var, else its default)."""
        default = self.surface["envs"].get("VLLM_USE_V1")
        value = os.environ.get("VLLM_USE_V1", default)
        return value is not None and value.strip() not in ("", "0")


def _populate(token: str, module_name: str, namespace: dict[str, Any]) -> None:
    """Called by each generated module file to fill in its names."""
    fake = _ACTIVE.get(token)
    if fake is None:
        raise ImportError(f"fake vllm module {module_name} used outside fake_vllm.installed()")
    namespace.update(fake.namespaces().get(module_name, {}))
    if module_name == "vllm.engine.async_llm_engine":
        _maybe_conditional_alias(fake, namespace)


def _maybe_conditional_alias(fake: FakeVllm, namespace: dict[str, Any]) -> None:
    """0.6.6-0.10.x: ``if envs.VLLM_USE_V1: AsyncLLMEngine = AsyncLLM`` at import time."""
    engine = fake.surface.get("async_llm_engine") or {}
    condition = engine.get("conditional_alias")
    if not condition or "AsyncLLM" not in namespace:
        return
    explicit = "is_set" not in condition["test"] or "VLLM_USE_V1" in os.environ
    if explicit and fake.use_v1():
        namespace["AsyncLLMEngine"] = namespace["AsyncLLM"]


# ---------------------------------------------------------------------------
# Building the fake classes
# ---------------------------------------------------------------------------


class _Unset:
    """Default of every optional parameter in the generated code: marks "not passed"."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()
Arguments = dict[str, Any]
Impl = Callable[[Arguments], Any]

_FUNCTION_TEMPLATE = """\
{prefix}def {name}({params}):
    __fake_arguments__ = __fake_explicit__(locals())
    {body}
"""
_BODIES = {
    "agen": "async for __fake_item__ in __fake_impl__(__fake_arguments__):\n"
            "        yield __fake_item__",
    "coro": "return __fake_impl__(__fake_arguments__)",
    "plain": "return __fake_impl__(__fake_arguments__)",
}


def _param_source(params: list[Record]) -> str:
    out: list[str] = []
    kinds = [p["kind"] for p in params]
    for index, p in enumerate(params):
        kind, name = p["kind"], p["name"]
        if kind == "keyword_only" and "var_positional" not in kinds and \
                (index == 0 or kinds[index - 1] not in ("keyword_only",)):
            out.append("*")
        if kind == "var_positional":
            out.append(f"*{name}")
        elif kind == "var_keyword":
            out.append(f"**{name}")
        else:
            out.append(name if p.get("default") is None else f"{name}=__fake_unset__")
        if kind == "positional_only" and (index + 1 == len(params)
                                          or kinds[index + 1] != "positional_only"):
            out.append("/")
    return ", ".join(out)


def _explicit(params: list[Record]) -> Callable[[dict[str, Any]], Arguments]:
    """``locals()`` at function entry -> the arguments the caller actually passed."""
    var = {p["name"] for p in params if p["kind"] in ("var_positional", "var_keyword")}

    def explicit(values: dict[str, Any]) -> Arguments:
        return {k: v for k, v in values.items()
                if v is not _UNSET and not (k in var and not v)}
    return explicit


def make_function(fake: FakeVllm, qualname: str, record: Record, impl: Impl) -> Callable[..., Any]:
    """A function with the recorded signature and async-ness that records its calls.

    The function is compiled from source, so Python itself binds the arguments at
    call time (a bad call raises ``TypeError`` before anything runs, even for an
    async generator); ``__signature__`` shows the recorded defaults.
    """
    params = record["params"]
    kind = "agen" if record["is_async_generator"] else "coro" if record["is_async"] else "plain"
    name = qualname.rsplit(".", 1)[-1]
    source = _FUNCTION_TEMPLATE.format(prefix="async " if kind != "plain" else "", name=name,
                                       params=_param_source(params), body=_BODIES[kind])
    skip_first = record.get("method_kind") in ("instance", "classmethod", "property")
    explicit = _explicit(params)

    def record_call(values: dict[str, Any]) -> Arguments:
        arguments = explicit(values)
        shown = dict(arguments)
        if skip_first and params:
            shown.pop(params[0]["name"], None)
        fake.calls.append(Call(qualname, shown))
        return arguments

    scope: dict[str, Any] = {"__fake_unset__": _UNSET, "__fake_impl__": impl,
                             "__fake_explicit__": record_call}
    exec(compile(source, f"<fake vllm {fake.version} {qualname}>", "exec"), scope)
    fn: Callable[..., Any] = scope[name]
    fn.__signature__ = signature_of(params)  # type: ignore[attr-defined]
    fn.__qualname__ = qualname
    return fn


def _wrap_method(fn: Callable[..., Any], record: Record) -> Any:
    kind = record.get("method_kind")
    if kind == "classmethod":
        return classmethod(fn)
    if kind == "staticmethod":
        return staticmethod(fn)
    return fn


def _default_value(source: str | None, namespace: dict[str, Any]) -> Any:
    """A usable attribute value for a recorded default (literal, factory, enum, else None)."""
    if source is None:
        return None
    ok, value = _literal(source)
    if ok:
        return value
    factory = re.search(r"default_factory\s*=\s*(list|dict|set|tuple)\b", source)
    if factory:
        return {"list": list, "dict": dict, "set": set, "tuple": tuple}[factory.group(1)]()
    inner = re.fullmatch(r"(?:\w+\.)*field\(\s*default\s*=\s*(.+?)\s*\)", source)
    if inner:
        return _default_value(inner.group(1), namespace)
    member = re.fullmatch(r"(\w+)\.(\w+)", source)
    if member and isinstance(namespace.get(member.group(1)), type):
        return getattr(namespace[member.group(1)], member.group(2), None)
    return None


def _fields_signature(entry: Record) -> inspect.Signature:
    params: list[Record] = []
    keyword_only = bool(entry.get("kw_only"))
    for f in entry["fields"]:
        kind = f.get("kind") or "positional_or_keyword"
        if kind == "positional_or_keyword" and (keyword_only or (
                f["default"] is None and params and params[-1]["default"] is not None
                and params[-1]["kind"] == "positional_or_keyword")):
            kind = "keyword_only"
        params.append({"name": f["name"], "kind": kind, "default": f["default"],
                       "annotation": f.get("annotation")})
    return signature_of([{"name": "self", "kind": "positional_or_keyword"}] + params)


def _unexpected(entry: Record, cls_name: str, name: str) -> TypeError:
    if entry["kind"] == "msgspec":
        return TypeError(f"Unexpected keyword argument '{name}'")
    return TypeError(f"{cls_name}.__init__() got an unexpected keyword argument '{name}'")


class _Annotation:
    """A recorded annotation: its text is the type's ``str()`` (not a string, which dataclasses would parse)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def make_fields_class(name: str, entry: Record, namespace: dict[str, Any],
                      bases: tuple[type, ...] = ()) -> type:
    """A params/args class taking exactly the recorded fields."""
    sig = _fields_signature(entry)
    names = {p.name for p in sig.parameters.values()}
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    defaults = {f["name"]: f["default"] for f in entry["fields"]
                if f.get("kind") not in ("var_positional", "var_keyword")}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in names and not open_kwargs:
                raise _unexpected(entry, name, key)
        bound = sig.bind(self, *args, **kwargs)
        for key, source in defaults.items():
            value = bound.arguments[key] if key in bound.arguments else \
                _default_value(source, namespace)
            object.__setattr__(self, key, value)
        object.__setattr__(self, "_fake_arguments", {k: v for k, v in bound.arguments.items()
                                                     if k != "self"})

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    body = {"__init__": __init__, "__module__": entry["module"], "__qualname__": name,
            "__repr__": _fields_repr, "__eq__": _fields_eq, "__hash__": None,
            "__fake_fields__": tuple(defaults)}
    if entry["kind"] == "msgspec":
        body["__struct_fields__"] = tuple(defaults)
    if entry["kind"] != "dataclass":
        return type(name, bases, body)
    # The recorded annotation as the field's type, as the real dataclass has it (``serve`` reads its text).
    annotations = {f["name"]: _Annotation(f["annotation"]) if f.get("annotation") else Any for f in entry["fields"]}
    specs = [(key, annotations[key], _dataclass_field(source, namespace)) for key, source in defaults.items()]
    cls: type = dataclasses.make_dataclass(name, specs, bases=bases, namespace=body, init=False,
                                           repr=False, eq=False)
    return cls


def _dataclass_field(source: str | None, namespace: dict[str, Any]) -> Any:
    """A :func:`dataclasses.field` so ``dataclasses.fields()`` works on the fake."""
    if source is None:
        return dataclasses.field()
    value = _default_value(source, namespace)
    if type(value).__hash__ is None:
        return dataclasses.field(default_factory=lambda: copy.copy(value))
    return dataclasses.field(default=value)


def _fields_repr(self: Any) -> str:
    """Only the explicitly passed arguments, to keep ``fake.calls`` readable."""
    passed = getattr(self, "_fake_arguments", {})
    inner = ", ".join(f"{k}={v!r}" for k, v in passed.items())
    return f"{type(self).__name__}({inner})"


def _fields_eq(self: Any, other: Any) -> Any:
    if type(self) is not type(other):
        return NotImplemented
    return all(bool(getattr(self, k, None) == getattr(other, k, None))
               for k in type(self).__fake_fields__)


def make_typed_dict(name: str, entry: Record) -> type:
    """A TypedDict with the recorded keys and required-ness."""
    required = {k["name"]: Any for k in entry["keys"] if k["required"]}
    optional = {k["name"]: Any for k in entry["keys"] if not k["required"]}
    make: Any = typing.TypedDict
    base: Any = make(f"_{name}Required", required)
    cls: type = types.new_class(name, (base,), {"total": False},
                                lambda ns: ns.update({"__annotations__": optional,
                                                      "__module__": entry["module"]}))
    return cls


def make_enum(name: str, entry: Record) -> type:
    members = {}
    for key, source in entry["members"].items():
        ok, value = _literal(source)
        members[key] = value if ok else key
    cls: type = enum.Enum(name, members, module=entry["module"])  # type: ignore[misc]
    return cls


# ---------------------------------------------------------------------------
# Behaviour of the fake methods
# ---------------------------------------------------------------------------

_TOKENIZER = FakeTokenizer()


def _prompt_parts(prompt: Any) -> tuple[str | None, list[int]]:
    if isinstance(prompt, str):
        return prompt, _TOKENIZER.encode(prompt)
    if isinstance(prompt, dict):
        text = prompt.get("prompt")
        ids = prompt.get("prompt_token_ids")
        if ids is None and isinstance(text, str):
            ids = _TOKENIZER.encode(text)
        return text, list(ids or [])
    if isinstance(prompt, (list, tuple)) and all(isinstance(i, int) for i in prompt):
        return None, list(prompt)
    return None, []


def _prompt_list(arguments: dict[str, Any]) -> list[Any]:
    """The prompts of an ``LLM.generate`` call, one entry per request."""
    prompts = arguments.get("prompts", arguments.get("inputs"))
    pairs = arguments.get("prompt_token_ids")
    if isinstance(prompts, list) and isinstance(pairs, list) and len(prompts) == len(pairs) and None in pairs:
        # 0.4.0 - 0.4.2: prompts[i] pairs with prompt_token_ids[i]; the text is tokenized where the ids are None
        return [text if ids is None else {"prompt": text, "prompt_token_ids": list(ids)} for text, ids in zip(prompts, pairs)]
    if prompts is None:
        ids = arguments.get("prompt_token_ids")
        if ids is None:
            return []
        if ids and all(isinstance(i, int) for i in ids):
            return [list(ids)]
        return [list(i) for i in ids]
    if isinstance(prompts, (str, dict)):
        return [prompts]
    if prompts and all(isinstance(i, int) for i in prompts):
        return [list(prompts)]
    return list(prompts)


def _n(sampling_params: Any, index: int) -> int:
    if isinstance(sampling_params, (list, tuple)):
        sampling_params = sampling_params[index] if index < len(sampling_params) else None
    n = getattr(sampling_params, "n", 1)
    return n if isinstance(n, int) and n > 0 else 1


class _Outputs:
    """Builds RequestOutput/CompletionOutput with whatever fields the release records."""

    def __init__(self, request_output: type, completion_output: type) -> None:
        self.request_output = request_output
        self.completion_output = completion_output

    @staticmethod
    def _new(cls: type, values: dict[str, Any]) -> Any:
        fields = getattr(cls, "__fake_fields__", tuple(values))
        sig = inspect.signature(cls)
        kwargs = {k: values.get(k) for k in fields if k in sig.parameters}
        return cls(**kwargs)

    def completion(self, index: int, text: str, finished: bool) -> Any:
        return self._new(self.completion_output, {
            "index": index, "text": text, "token_ids": _TOKENIZER.encode(text),
            "cumulative_logprob": None, "logprobs": None,
            "finish_reason": "length" if finished else None, "stop_reason": None})

    def request(self, request_id: str, prompt: Any, n: int, finished: bool) -> Any:
        text, ids = _prompt_parts(prompt)
        outputs = [self.completion(i, f"fake-{i}" if finished else "fake", finished)
                   for i in range(n)]
        return self._new(self.request_output, {
            "request_id": request_id, "prompt": text, "prompt_token_ids": ids,
            "prompt_logprobs": None, "outputs": outputs, "finished": finished})


class _BeamSearchSequence:
    def __init__(self, tokens: list[int], text: str) -> None:
        self.tokens, self.text, self.cum_logprob, self.finish_reason = tokens, text, 0.0, "length"


class _BeamSearchOutput:
    def __init__(self, sequences: list[_BeamSearchSequence]) -> None:
        self.sequences = sequences


def _store_init(arguments: Arguments) -> None:
    args = dict(arguments)
    self = args.pop(next(iter(args)))
    self._fake_init_arguments = args


def _llm_impls(outputs: _Outputs) -> dict[str, Impl]:
    def generate(args: Arguments) -> list[Any]:
        prompts = _prompt_list(args)
        sampling = args.get("sampling_params")
        return [outputs.request(str(i), p, _n(sampling, i), True) for i, p in enumerate(prompts)]

    def chat(args: Arguments) -> list[Any]:
        messages = args.get("messages") or []
        many = bool(messages) and isinstance(messages[0], (list, tuple))
        count = len(messages) if many else 1
        sampling = args.get("sampling_params")
        return [outputs.request(str(i), "", _n(sampling, i), True) for i in range(count)]

    def beam_search(args: Arguments) -> list[_BeamSearchOutput]:
        prompts = _prompt_list({"prompts": args.get("prompts")})
        return [_BeamSearchOutput([_BeamSearchSequence(_prompt_parts(p)[1], "fake-0")])
                for p in prompts]

    return {"__init__": _store_init, "generate": generate, "chat": chat,
            "beam_search": beam_search, "get_tokenizer": lambda args: _TOKENIZER}


def _engine_impls(fake: FakeVllm, outputs: _Outputs) -> dict[str, Impl]:
    def stream(args: Arguments) -> AsyncIterator[Any]:
        prompt = args.get("prompt", args.get("inputs"))
        if prompt is None and args.get("prompt_token_ids") is not None:
            prompt = {"prompt_token_ids": args["prompt_token_ids"]}
        return _two_outputs(outputs, str(args.get("request_id")), prompt,
                            _n(args.get("sampling_params"), 0))

    def from_engine_args(args: Arguments) -> Any:
        cls = next(iter(args.values()))
        target = _engine_class_for(fake, cls)
        instance: Any = object.__new__(target)
        instance.engine_args = args.get("engine_args")
        return instance

    return {"__init__": _store_init, "generate": stream, "abort": lambda args: None,
            "get_tokenizer": lambda args: _TOKENIZER, "from_engine_args": from_engine_args}


async def _two_outputs(outputs: _Outputs, request_id: str, prompt: Any,
                       n: int) -> AsyncIterator[Any]:
    yield outputs.request(request_id, prompt, n, False)
    yield outputs.request(request_id, prompt, n, True)


def _engine_class_for(fake: FakeVllm, cls: type) -> type:
    """What ``from_engine_args`` returns: V1 ``AsyncLLM`` when the release would run V1."""
    spaces = fake.namespaces()
    v1: type | None = spaces.get("vllm.v1.engine.async_llm", {}).get("AsyncLLM")
    v0: type | None = spaces.get("vllm.engine.async_llm_engine", {}).get("AsyncLLMEngine")
    if v1 is None or cls is v1 or cls is not v0:
        return cls
    return v1 if fake.use_v1() else cls


# ---------------------------------------------------------------------------
# Assembling the namespaces of the fake modules
# ---------------------------------------------------------------------------


class _Builder:
    def __init__(self, fake: FakeVllm) -> None:
        self.fake = fake
        self.surface = fake.surface
        self.spaces: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, Any] = {}

    def put(self, module: str | None, name: str, obj: Any) -> None:
        if module:
            self.spaces.setdefault(module, {})[name] = obj
        self.objects.setdefault(name, obj)

    def build(self) -> dict[str, dict[str, Any]]:
        self._enum()
        self._params()
        self._engine_args()
        self._prompts()
        self._outputs()
        self._engines()
        self._envs()
        self._package()
        return self.spaces

    def _enum(self) -> None:
        entry = self.surface.get("request_output_kind")
        if entry:
            self.put(entry["module"], "RequestOutputKind", make_enum("RequestOutputKind", entry))

    def _params(self) -> None:
        scope = dict(self.objects)
        for name, entry in self.surface["params"].items():
            if entry:
                self.put(entry["module"], name, make_fields_class(name, entry, scope))

    def _engine_args(self) -> None:
        base = self.surface["engine_args"].get("EngineArgs")
        if not base:
            return
        engine_args = make_fields_class("EngineArgs", base, dict(self.objects))
        self.put(base["module"], "EngineArgs", engine_args)
        entry = self.surface["engine_args"].get("AsyncEngineArgs")
        if entry:
            cls = make_fields_class("AsyncEngineArgs", entry, dict(self.objects), (engine_args,))
            self.put(entry["module"], "AsyncEngineArgs", cls)

    def _prompts(self) -> None:
        prompts = self.surface["prompts"]
        for name in ("TextPrompt", "TokensPrompt"):
            entry = prompts.get(name)
            if entry and entry.get("keys") is not None:
                self._put_prompt(name, entry, make_typed_dict(name, entry))
        members = [self.objects[n] for n in ("TextPrompt", "TokensPrompt") if n in self.objects]
        union: Any = Union[tuple([str, *members])]
        for name, entry in prompts.items():
            if entry and name not in ("TextPrompt", "TokensPrompt"):
                self._put_prompt(name, entry, union)

    def _put_prompt(self, name: str, entry: Record, obj: Any) -> None:
        self.put(entry.get("module"), name, obj)
        if entry.get("importable_from_vllm_inputs"):
            self.put("vllm.inputs", name, obj)

    def _outputs(self) -> None:
        for name in ("CompletionOutput", "RequestOutput"):
            entry = (self.surface.get("outputs") or {}).get(name) or {
                "module": "vllm.outputs", "kind": "class", "fields": [
                    {"name": "kwargs", "kind": "var_keyword", "default": None}]}
            self.put(entry["module"], name, make_fields_class(name, entry, dict(self.objects)))

    def _engines(self) -> None:
        outputs = _Outputs(self.objects["RequestOutput"], self.objects["CompletionOutput"])
        llm = self.surface.get("llm")
        if llm:
            self.put(llm["module"], "LLM", self._class("LLM", llm, _llm_impls(outputs)))
        v1 = self.surface.get("async_llm")
        impls = _engine_impls(self.fake, outputs)
        if v1:
            self.put(v1["module"], "AsyncLLM", self._class("AsyncLLM", v1, impls))
        v0 = self.surface.get("async_llm_engine")
        if v0 and v0.get("alias_of") and v1:
            self.put(v0["module"], "AsyncLLM", self.objects["AsyncLLM"])
            self.put(v0["module"], "AsyncLLMEngine", self.objects["AsyncLLM"])
        elif v0:
            engine = self._class("AsyncLLMEngine", v0, impls)
            self.put(v0["module"], "AsyncLLMEngine", engine)
            if v1 and v0.get("conditional_alias"):
                self.put(v0["module"], "AsyncLLM", self.objects["AsyncLLM"])

    def _class(self, name: str, entry: Record, impls: dict[str, Impl]) -> type:
        body: dict[str, Any] = {"__module__": entry["module"].rsplit(":", 1)[0],
                                "__qualname__": name}
        if entry.get("defined_in"):
            body["__module__"] = entry["defined_in"].split(":")[0]
        for method, record in entry["methods"].items():
            if record is None:
                continue
            impl = impls.get(method, lambda args: None)
            fn = make_function(self.fake, f"{name}.{method}", record, impl)
            body[method] = _wrap_method(fn, record)
        return type(name, (), body)

    def _envs(self) -> None:
        envs = self.surface.get("envs") or {}
        if not envs.get("module_exists"):
            return
        default = envs.get("VLLM_USE_V1")
        space = self.spaces.setdefault("vllm.envs", {})
        space["is_set"] = lambda name: name in os.environ
        if default is not None:
            space["__getattr__"] = _envs_getattr(default)
            space["environment_variables"] = {
                "VLLM_USE_V1": lambda: bool(int(os.getenv("VLLM_USE_V1", default)))}

    def _package(self) -> None:
        top = self.spaces.setdefault("vllm", {})
        exports = self.surface["exports"]
        for name, module in sorted(exports.get("names", {}).items()):
            if module is not None and name in self.objects:
                top[name] = self.objects[name]
        top["__version__"] = self.fake.version
        top["__all__"] = [n for n in exports.get("all") or [] if n in top]


def _envs_getattr(default: str) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name == "VLLM_USE_V1":
            return bool(int(os.getenv("VLLM_USE_V1", default)))
        raise AttributeError(f"module 'vllm.envs' has no attribute {name!r}")
    return __getattr__


# ---------------------------------------------------------------------------
# Writing and installing the package
# ---------------------------------------------------------------------------

_MODULE_SOURCE = '''\
"""Fake vllm {version}: generated by glm_vllm_compat.testing.fake_vllm."""
from glm_vllm_compat.testing import fake_vllm as _fake_vllm

_fake_vllm._populate({token!r}, __name__, globals())
del _fake_vllm
'''


def module_files(modules: set[str]) -> dict[str, str]:
    """Module name -> relative file path (packages get ``__init__.py``)."""
    every = set(modules)
    for name in modules:
        parts = name.split(".")
        every.update(".".join(parts[:i]) for i in range(1, len(parts)))
    out = {}
    for name in every:
        is_package = any(other.startswith(name + ".") for other in every)
        base = name.replace(".", "/")
        out[name] = base + "/__init__.py" if is_package else base + ".py"
    return out


def write_package(fake: FakeVllm) -> None:
    """Write ``vllm/`` and ``vllm-<version>.dist-info/`` under ``fake.root``."""
    root = fake.root
    _remove_previous(root)
    modules = set(fake.namespaces()) | {"vllm"}
    written = []
    for rel in sorted(module_files(modules).values()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_MODULE_SOURCE.format(version=fake.version, token=fake.token))
        written.append(rel)
    (root / "vllm" / MARKER).write_text(fake.version + "\n")
    _write_dist_info(root, fake.version, written)


def _write_dist_info(root: Path, version: str, files: list[str]) -> None:
    info = root / f"vllm-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n"
        "Summary: fake vLLM written by glm_vllm_compat.testing.fake_vllm\n")
    (info / "top_level.txt").write_text("vllm\n")
    (info / "INSTALLER").write_text("glm-vllm-compat-fake\n")
    record = [f"{f},," for f in files] + [f"{info.name}/{n},," for n in
                                          ("METADATA", "top_level.txt", "INSTALLER", "RECORD")]
    (info / "RECORD").write_text("\n".join(record) + "\n")


def _remove_previous(root: Path) -> None:
    package = root / "vllm"
    if package.exists():
        if not (package / MARKER).exists():
            raise FileExistsError(f"{package} exists and is not a fake vllm")
        shutil.rmtree(package)
    for info in root.glob("vllm-*.dist-info"):
        if (info / "INSTALLER").is_file() and \
                (info / "INSTALLER").read_text().strip() == "glm-vllm-compat-fake":
            shutil.rmtree(info)


def _vllm_modules() -> dict[str, types.ModuleType]:
    return {k: m for k, m in sys.modules.items() if k == "vllm" or k.startswith("vllm.")}


@contextlib.contextmanager
def installed(release: str | os.PathLike[str] | Surface,
              path: str | os.PathLike[str]) -> Iterator[FakeVllm]:
    """Install a fake ``vllm`` of ``release`` (version, JSON path or surface) under ``path``."""
    surface = release if isinstance(release, dict) else load_surface(release)
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    fake = FakeVllm(surface, root)
    _ACTIVE[fake.token] = fake
    saved = _vllm_modules()
    try:
        write_package(fake)
        for name in saved:
            del sys.modules[name]
        sys.path.insert(0, str(root))
        importlib.invalidate_caches()
        yield fake
    finally:
        _uninstall(fake, saved)


def _uninstall(fake: FakeVllm, saved: dict[str, types.ModuleType]) -> None:
    for name in _vllm_modules():
        del sys.modules[name]
    sys.modules.update(saved)
    with contextlib.suppress(ValueError):
        sys.path.remove(str(fake.root))
    sys.path_importer_cache.pop(str(fake.root), None)
    importlib.invalidate_caches()
    _ACTIVE.pop(fake.token, None)
