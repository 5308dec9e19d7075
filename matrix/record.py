#!/usr/bin/env python3
"""Record the public Python surface of every vLLM release, without importing vLLM.

    python matrix/record.py --all              # every final/post release >= 0.4.0
    python matrix/record.py 0.5.5 0.6.3        # some releases
    python matrix/record.py --check            # re-parse cached archives, diff checked-in files
    python matrix/record.py --history          # regenerate src/glm_vllm_compat/_history.py
    python matrix/record.py --new              # record what the index has and matrix/ lacks, then the tables
    python matrix/record.py --check-newest     # exit 1 when the index has a release matrix/ lacks

Each release's sdist (or, where PyPI has none, its wheel, read member by member
with HTTP range requests) is downloaded once into ``matrix/.downloads/``; the
sources are parsed with :mod:`ast` only and the result is written to
``matrix/surfaces/<version>.json``.  See ``matrix/README.md`` for the schema.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import re
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import urljoin, urlsplit

from packaging.version import Version

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SURFACES = HERE / "surfaces"
DOWNLOADS = HERE / ".downloads"
VERSIONS_FILE = HERE / "versions.json"
HISTORY_FILE = ROOT / "src" / "glm_vllm_compat" / "_history.py"
INDEX_URL = "https://pypi.org/pypi/vllm/json"
OLDEST = Version("0.4.0")
SCHEMA = 1
UA = {"User-Agent": "glm-vllm-compat-matrix/1"}



def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# PyPI: which releases, which file
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    version: str
    kind: str  # "sdist" | "wheel"
    filename: str
    url: str  # where we fetch it from
    canonical_url: str  # files.pythonhosted.org form, recorded in the surface
    sha256: str
    size: int

    def source(self) -> dict[str, Any]:
        return {"kind": self.kind, "filename": self.filename, "size": self.size,
                "url": self.canonical_url, "sha256": self.sha256}


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={**UA, **(headers or {})})
    for attempt in range(4):
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, dict(response.headers.items()), response.read()
        except OSError:
            if attempt == 3:
                raise
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


def canonical_url(url: str) -> str:
    """PyPI mirrors may serve relative or proxied URLs; record the canonical one."""
    pattern = r"/packages/([0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{60}/[^/]+)$"
    match = re.search(pattern, urlsplit(url).path)
    if match:
        return "https://files.pythonhosted.org/packages/" + match.group(1)
    return url


def _wheel_rank(filename: str) -> tuple[int, int, str]:
    x86 = 0 if "x86_64" in filename else 1
    tag = 0 if ("cp311" in filename or "abi3" in filename) else 1
    return (x86, tag, filename)


def pick_file(version: str, files: list[dict[str, Any]]) -> Release | None:
    live = [f for f in files if not f.get("yanked")] or files
    sdists = [f for f in live if f["packagetype"] == "sdist"]
    wheels = sorted((f for f in live if f["filename"].endswith(".whl")),
                    key=lambda f: _wheel_rank(f["filename"]))
    chosen = sdists[0] if sdists else (wheels[0] if wheels else None)
    if chosen is None:
        return None
    url = urljoin(INDEX_URL, chosen["url"])
    return Release(version, "sdist" if sdists else "wheel", chosen["filename"], url,
                   canonical_url(url), chosen["digests"]["sha256"], int(chosen["size"]))


def releases_from_index(index: dict[str, Any]) -> list[Release]:
    out = []
    for raw, files in index["releases"].items():
        try:
            version = Version(raw)
        except ValueError:
            continue
        if version < OLDEST or version.is_prerelease or version.is_devrelease or not files:
            continue
        if all(f.get("yanked") for f in files) and _has_unyanked_final(index, raw):
            continue
        release = pick_file(raw, files)
        if release is not None:
            out.append(release)
    return sorted(out, key=lambda r: Version(r.version))


def _has_unyanked_final(index: dict[str, Any], raw: str) -> bool:
    return any(any(not f.get("yanked") for f in files)
               for v, files in index["releases"].items() if v != raw)


def fetch_index() -> dict[str, Any]:
    _, _, body = http_get(INDEX_URL)
    data: dict[str, Any] = json.loads(body)
    return data


# ---------------------------------------------------------------------------
# Archives: the vllm/ Python sources of a release
# ---------------------------------------------------------------------------


class SourceTree:
    """The ``vllm/**.py`` files of one release, keyed by ``vllm/...`` paths."""

    def names(self) -> set[str]:
        raise NotImplementedError

    def read(self, path: str) -> str | None:
        raise NotImplementedError

    def listdir(self, directory: str) -> list[str]:
        prefix = directory.rstrip("/") + "/"
        return sorted(n for n in self.names()
                      if n.startswith(prefix) and "/" not in n[len(prefix):])


class SdistTree(SourceTree):
    def __init__(self, path: Path) -> None:
        self.files: dict[str, bytes] = {}
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) > 2 and parts[1] == "vllm" and member.name.endswith(".py") \
                        and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        self.files["/".join(parts[1:])] = handle.read()

    def names(self) -> set[str]:
        return set(self.files)

    def read(self, path: str) -> str | None:
        data = self.files.get(path)
        return None if data is None else data.decode("utf-8", "replace")


class RangeFile(io.RawIOBase):
    """A seekable read-only view of a remote file, fetched in cached blocks.

    Blocks are kept in ``<cache>/<n>`` so a later run (``--check``) reads the
    same bytes without the network.
    """

    BLOCK = 1 << 18

    def __init__(self, url: str, size: int, cache: Path) -> None:
        super().__init__()
        self.url, self.size, self.cache, self.pos = url, size, cache, 0
        self.fetched = 0
        cache.mkdir(parents=True, exist_ok=True)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _block(self, index: int) -> bytes:
        path = self.cache / str(index)
        if path.exists():
            return path.read_bytes()
        start = index * self.BLOCK
        end = min(self.size, start + self.BLOCK) - 1
        status, _, body = http_get(self.url, {"Range": f"bytes={start}-{end}"})
        if status != 206 or len(body) != end - start + 1:
            raise OSError(f"range request not honoured by {self.url} (HTTP {status})")
        self.fetched += len(body)
        path.with_suffix(".part").write_bytes(body)
        path.with_suffix(".part").replace(path)
        return body

    def read(self, size: int = -1) -> bytes:
        end = self.size if size < 0 else min(self.size, self.pos + size)
        chunks = []
        while self.pos < end:
            index, offset = divmod(self.pos, self.BLOCK)
            piece = self._block(index)[offset:offset + end - self.pos]
            chunks.append(piece)
            self.pos += len(piece)
        return b"".join(chunks)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class WheelTree(SourceTree):
    def __init__(self, release: Release, offline: bool) -> None:
        cache = DOWNLOADS / (release.filename + ".ranges")
        if offline and not cache.exists():
            raise FileNotFoundError(cache)
        self.remote = RangeFile(release.url, release.size, cache)
        self.zip = zipfile.ZipFile(io.BufferedReader(self.remote, 1 << 16))
        self._names = {n for n in self.zip.namelist()
                       if n.startswith("vllm/") and n.endswith(".py")}

    def names(self) -> set[str]:
        return self._names

    def read(self, path: str) -> str | None:
        if path not in self._names:
            return None
        return self.zip.read(path).decode("utf-8", "replace")


def ensure_sdist(release: Release, offline: bool) -> Path:
    path = DOWNLOADS / release.filename
    if path.exists():
        return path
    if offline:
        raise FileNotFoundError(path)
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    _, _, body = http_get(release.url)
    digest = hashlib.sha256(body).hexdigest()
    if digest != release.sha256:
        raise OSError(f"{release.filename}: sha256 {digest} != {release.sha256}")
    path.with_suffix(".part").write_bytes(body)
    path.with_suffix(".part").replace(path)
    return path


def open_tree(release: Release, offline: bool = False) -> SourceTree:
    if release.kind == "sdist":
        return SdistTree(ensure_sdist(release, offline))
    return WheelTree(release, offline)


# ---------------------------------------------------------------------------
# Modules, bindings and name resolution (ast only)
# ---------------------------------------------------------------------------


@dataclass
class Module:
    name: str
    path: str
    tree: ast.Module
    is_package: bool
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Binding:
    node: ast.stmt
    target: str  # the bound name
    source: str  # for imports: the imported name ("" for `import x`)
    where: str  # "" (top level), "if", "else", "try", "except", "type_checking"


@dataclass(frozen=True)
class Symbol:
    module: str
    name: str
    node: ast.AST
    alias_of: str | None = None  # "module:Name" when reached through `X = Y`


def _is_type_checking(test: ast.expr) -> bool:
    text = ast.unparse(test)
    return text in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _walk_bindings(body: Sequence[ast.stmt], where: str) -> Iterator[tuple[ast.stmt, str]]:
    for stmt in body:
        if isinstance(stmt, ast.If):
            inner = "type_checking" if _is_type_checking(stmt.test) else (where or "if")
            yield from _walk_bindings(stmt.body, inner)
            yield from _walk_bindings(stmt.orelse, where or "else")
        elif isinstance(stmt, ast.Try):
            yield from _walk_bindings(stmt.body + stmt.orelse + stmt.finalbody, where or "try")
            for handler in stmt.handlers:
                yield from _walk_bindings(handler.body, where or "except")
        elif isinstance(stmt, ast.With):
            yield from _walk_bindings(stmt.body, where)
        else:
            yield stmt, where


def _targets(stmt: ast.stmt) -> Iterator[tuple[str, str]]:
    if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        yield stmt.name, stmt.name
    elif isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                yield target.id, target.id
    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        yield stmt.target.id, stmt.target.id
    elif isinstance(stmt, ast.ImportFrom):
        for alias in stmt.names:
            if alias.name != "*":
                yield alias.asname or alias.name, alias.name
    elif isinstance(stmt, ast.Import):
        for alias in stmt.names:
            yield alias.asname or alias.name.split(".")[0], ""


def absolute_module(module: Module, stmt: ast.ImportFrom) -> str:
    if not stmt.level:
        return stmt.module or ""
    parts = module.name.split(".")
    base = parts if module.is_package else parts[:-1]
    base = base[: len(base) - (stmt.level - 1)]
    return ".".join(base + ([stmt.module] if stmt.module else []))


class Project:
    """Lazy ast view of one release's ``vllm`` package."""

    def __init__(self, tree: SourceTree) -> None:
        self.tree = tree
        self.modules: dict[str, Module | None] = {}

    def module(self, name: str) -> Module | None:
        if name not in self.modules:
            self.modules[name] = self._load(name)
        return self.modules[name]

    def _load(self, name: str) -> Module | None:
        base = name.replace(".", "/")
        for path, is_package in ((base + ".py", False), (base + "/__init__.py", True)):
            text = self.tree.read(path)
            if text is None:
                continue
            try:
                tree = ast.parse(text)
            except SyntaxError:
                return None
            module = Module(name, path, tree, is_package)
            self._index(module)
            return module
        return None

    def _index(self, module: Module) -> None:
        for stmt, where in _walk_bindings(module.tree.body, ""):
            if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
                module.stars.append(absolute_module(module, stmt))
            for target, source in _targets(stmt):
                module.bindings.setdefault(target, []).append(Binding(stmt, target, source, where))

    def is_module(self, name: str) -> bool:
        return self.module(name) is not None

    def find(self, modname: str, name: str, seen: frozenset[str] = frozenset()) -> Symbol | None:
        key = f"{modname}:{name}"
        module = self.module(modname)
        if module is None or key in seen:
            return None
        seen = seen | {key}
        binding = choose_binding(module.bindings.get(name, []))
        if binding is not None:
            return self._follow(module, binding, seen)
        for star in module.stars:
            found = self.find(star, name, seen)
            if found is not None:
                return found
        return self._lazy(module, name, seen)

    def _follow(self, module: Module, binding: Binding, seen: frozenset[str]) -> Symbol | None:
        stmt = binding.node
        if isinstance(stmt, ast.ImportFrom):
            source = absolute_module(module, stmt)
            found = self.find(source, binding.source, seen)
            if found is None and self.is_module(f"{source}.{binding.source}"):
                sub = self.module(f"{source}.{binding.source}")
                assert sub is not None
                return Symbol(sub.name, "", sub.tree)
            return found
        if isinstance(stmt, ast.Import):
            return None
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Name) and value.id != binding.target:
            target = self.find(module.name, value.id, seen)
            if target is not None and isinstance(target.node, ast.ClassDef):
                return Symbol(target.module, target.name, target.node,
                              alias_of=f"{target.module}:{target.name}")
        return Symbol(module.name, binding.target, stmt)

    def _lazy(self, module: Module, name: str, seen: frozenset[str]) -> Symbol | None:
        spec = lazy_attrs(module).get(name)
        if spec is None:
            return None
        if spec == "":
            return Symbol(module.name, name, module.tree)
        target_mod, _, attr = spec.partition(":")
        if target_mod.startswith("."):
            stmt = ast.ImportFrom(module=target_mod.lstrip(".") or None,
                                  names=[], level=len(target_mod) - len(target_mod.lstrip(".")))
            target_mod = absolute_module(module, stmt)
        return self.find(target_mod, attr or name, seen)


_WHERE_RANK = {"": 0, "try": 0, "else": 1, "if": 2, "except": 3, "type_checking": 4}


def choose_binding(bindings: list[Binding]) -> Binding | None:
    """The binding Python would see at import time, most probably."""
    if not bindings:
        return None
    best = min(_WHERE_RANK[b.where] for b in bindings)
    candidates = [b for b in bindings if _WHERE_RANK[b.where] == best]
    classes = [b for b in candidates if isinstance(b.node, ast.ClassDef)]
    return (classes or candidates)[-1]


def conditional_alias(project: Project, modname: str, name: str) -> dict[str, str] | None:
    """`if <test>: Name = Other` at module level (e.g. AsyncLLMEngine = AsyncLLM)."""
    module = project.module(modname)
    if module is None:
        return None
    for stmt in module.tree.body:
        if not isinstance(stmt, ast.If) or _is_type_checking(stmt.test):
            continue
        for inner, _ in _walk_bindings(stmt.body, "if"):
            if isinstance(inner, ast.Assign) and isinstance(inner.value, ast.Name) and \
                    any(isinstance(t, ast.Name) and t.id == name for t in inner.targets):
                target = project.find(modname, inner.value.id) or \
                    _find_in_body(project, module, stmt.body, inner.value.id)
                where = f"{target.module}:{target.name}" if target else inner.value.id
                return {"of": where, "test": ast.unparse(stmt.test)}
    return None


def _find_in_body(project: Project, module: Module, body: list[ast.stmt],
                  name: str) -> Symbol | None:
    for stmt in body:
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if (alias.asname or alias.name) == name:
                    return project.find(absolute_module(module, stmt), alias.name)
    return None


def lazy_attrs(module: Module) -> dict[str, str]:
    """Names served by a module-level ``__getattr__``: name -> "module:attr" or ""."""
    getattr_fn = next((s for s in module.tree.body
                       if isinstance(s, ast.FunctionDef) and s.name == "__getattr__"), None)
    if getattr_fn is None:
        for stmt, _ in _walk_bindings(module.tree.body, ""):
            if isinstance(stmt, ast.FunctionDef) and stmt.name == "__getattr__":
                getattr_fn = stmt
    if getattr_fn is None:
        return {}
    out: dict[str, str] = {}
    for node in ast.walk(getattr_fn):
        if isinstance(node, ast.Compare) and len(node.comparators) == 1:
            out.update(_compared_names(module, node))
    return out


def _compared_names(module: Module, node: ast.Compare) -> dict[str, str]:
    other = node.comparators[0]
    if isinstance(node.ops[0], ast.Eq) and isinstance(other, ast.Constant) \
            and isinstance(other.value, str):
        return {other.value: ""}
    if isinstance(node.ops[0], ast.In):
        if isinstance(other, ast.Name):
            return _dict_literal_strings(module, other.id)
        if isinstance(other, (ast.Tuple, ast.List, ast.Set)):
            return {e.value: "" for e in other.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return {}


def _dict_literal_strings(module: Module, name: str) -> dict[str, str]:
    for stmt in module.tree.body:
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if isinstance(value, ast.Dict) and any(isinstance(t, ast.Name) and t.id == name
                                                for t in targets):
            return {k.value: (v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                              else "")
                    for k, v in zip(value.keys, value.values)
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return {}


# ---------------------------------------------------------------------------
# Functions and classes
# ---------------------------------------------------------------------------

FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


def _src(node: ast.AST | None) -> str | None:
    return None if node is None else ast.unparse(node)


def parameters(args: ast.arguments) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += list(args.defaults)
    for index, (arg, default) in enumerate(zip(positional, defaults)):
        kind = "positional_only" if index < len(args.posonlyargs) else "positional_or_keyword"
        out.append(_param(arg, kind, default))
    if args.vararg is not None:
        out.append(_param(args.vararg, "var_positional", None))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
        out.append(_param(arg, "keyword_only", kw_default))
    if args.kwarg is not None:
        out.append(_param(args.kwarg, "var_keyword", None))
    return out


def _param(arg: ast.arg, kind: str, default: ast.expr | None) -> dict[str, Any]:
    return {"name": arg.arg, "kind": kind, "default": _src(default),
            "annotation": _src(arg.annotation)}


def _own_nodes(fn: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a function body, not descending into nested scopes."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def env_reads(fn: FunctionNode) -> list[str]:
    names: set[str] = set()
    for node in _own_nodes(fn):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "envs" and node.attr.startswith("VLLM_"):
            names.add(node.attr)
    return sorted(names)


def method_kind(decorators: list[str]) -> str:
    for kind in ("classmethod", "staticmethod", "property"):
        if kind in decorators:
            return kind
    return "instance"


def signature(fn: FunctionNode, owner: str) -> dict[str, Any]:
    decorators = [ast.unparse(d) for d in fn.decorator_list]
    is_async = isinstance(fn, ast.AsyncFunctionDef)
    has_yield = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(fn))
    return {
        "params": parameters(fn.args),
        "returns": _src(fn.returns),
        "is_async": is_async,
        "is_async_generator": is_async and has_yield,
        "is_generator": (not is_async) and has_yield,
        "decorators": decorators,
        "method_kind": method_kind(decorators),
        "defined_in": owner,
        "env_reads": env_reads(fn),
    }


def _is_overload(fn: FunctionNode) -> bool:
    return any(ast.unparse(d) in ("overload", "typing.overload", "typing_extensions.overload")
               for d in fn.decorator_list)


def _defs_named(cls: ast.ClassDef, name: str) -> list[FunctionNode]:
    found: list[FunctionNode] = []
    for stmt, where in _walk_bindings(cls.body, ""):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == name \
                and where != "type_checking":
            found.append(stmt)
    return found


def function_record(defs: list[FunctionNode], owner: str) -> dict[str, Any]:
    impls = [d for d in defs if not _is_overload(d)]
    overloads = [d for d in defs if _is_overload(d)]
    record = signature((impls or defs)[-1], owner)
    if overloads:
        record["overloads"] = [signature(o, owner) for o in overloads]
    return record


def class_mro(project: Project, symbol: Symbol, depth: int = 0) -> list[Symbol]:
    """The class and its vllm base classes, in (approximate) method resolution order."""
    if not isinstance(symbol.node, ast.ClassDef) or depth > 20:
        return []
    out = [symbol]
    for base in symbol.node.bases:
        resolved = resolve_expr(project, symbol.module, base)
        for item in class_mro(project, resolved, depth + 1) if resolved else []:
            if all(item.module != s.module or item.name != s.name for s in out):
                out.append(item)
    return out


def resolve_expr(project: Project, modname: str, expr: ast.expr) -> Symbol | None:
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Name):
        return project.find(modname, expr.id)
    if isinstance(expr, ast.Attribute):
        base = resolve_expr(project, modname, expr.value)
        if base is not None and isinstance(base.node, ast.Module):
            return project.find(base.module, expr.attr)
        return _module_attr(project, modname, expr)
    return None


def _module_attr(project: Project, modname: str, expr: ast.Attribute) -> Symbol | None:
    """`vllm.x.y.Name` or `import vllm.x as m; m.Name` style references."""
    dotted = ast.unparse(expr.value)
    module = project.module(modname)
    if module is not None:
        for binding in module.bindings.get(dotted.split(".")[0], []):
            if isinstance(binding.node, ast.Import):
                for alias in binding.node.names:
                    if alias.asname == dotted:
                        return project.find(alias.name, expr.attr)
    return project.find(dotted, expr.attr) if dotted.startswith("vllm") else None


def class_methods(project: Project, symbol: Symbol, names: Iterable[str]) -> dict[str, Any]:
    mro = class_mro(project, symbol)
    out: dict[str, Any] = {}
    for name in names:
        out[name] = None
        for cls in mro:
            assert isinstance(cls.node, ast.ClassDef)
            defs = _defs_named(cls.node, name)
            if defs:
                out[name] = function_record(defs, f"{cls.module}:{cls.name}")
                break
    return out


# ---------------------------------------------------------------------------
# Fields: plain classes, msgspec structs, dataclasses, TypedDicts, enums
# ---------------------------------------------------------------------------


def _base_names(project: Project, symbol: Symbol) -> set[str]:
    assert isinstance(symbol.node, ast.ClassDef)
    names: set[str] = set()
    for cls in class_mro(project, symbol):
        assert isinstance(cls.node, ast.ClassDef)
        names.update(ast.unparse(b) for b in cls.node.bases)
    return names


def class_kind(project: Project, symbol: Symbol) -> str:
    assert isinstance(symbol.node, ast.ClassDef)
    decorators = [ast.unparse(d) for d in symbol.node.decorator_list]
    bases = _base_names(project, symbol)
    if any(b in ("msgspec.Struct", "Struct") for b in bases):
        return "msgspec"
    if any(re.match(r"^(dataclasses\.)?dataclass\b|^(pydantic\.)?dataclasses?\.dataclass", d)
           or d.startswith("dataclass(") for d in decorators):
        return "dataclass"
    if any(b.endswith("BaseModel") for b in bases):
        return "pydantic"
    return "class"


def _is_classvar(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "Final", "typing.Final"))


def annotated_fields(cls: ast.ClassDef) -> list[dict[str, Any]]:
    out = []
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                and not _is_classvar(stmt.annotation):
            out.append({"name": stmt.target.id, "default": _src(stmt.value),
                        "annotation": _src(stmt.annotation)})
    return out


def inherited_fields(project: Project, symbol: Symbol) -> list[dict[str, Any]]:
    """Dataclass/msgspec field order: base fields first, overrides keep their slot."""
    fields: dict[str, dict[str, Any]] = {}
    for cls in reversed(class_mro(project, symbol)):
        assert isinstance(cls.node, ast.ClassDef)
        for item in annotated_fields(cls.node):
            fields[item["name"]] = {**item, "defined_in": f"{cls.module}:{cls.name}"}
    return list(fields.values())


def init_fields(project: Project, symbol: Symbol) -> list[dict[str, Any]]:
    init = class_methods(project, symbol, ["__init__"])["__init__"]
    if init is None:
        return []
    return [{"name": p["name"], "default": p["default"], "annotation": p["annotation"],
             "kind": p["kind"], "defined_in": init["defined_in"]}
            for p in init["params"][1:]]


def params_class(project: Project, modname: str, name: str) -> dict[str, Any] | None:
    symbol = project.find(modname, name)
    if symbol is None or not isinstance(symbol.node, ast.ClassDef):
        return None
    kind = class_kind(project, symbol)
    fields = init_fields(project, symbol) if kind == "class" else inherited_fields(project, symbol)
    decorators = [ast.unparse(d) for d in symbol.node.decorator_list]
    return {"module": symbol.module, "class": symbol.name, "kind": kind,
            "alias_of": symbol.alias_of, "decorators": decorators,
            "kw_only": any("kw_only=True" in d for d in decorators),
            "bases": [ast.unparse(b) for b in symbol.node.bases], "fields": fields}


def typed_dict(project: Project, modname: str, name: str) -> dict[str, Any] | None:
    symbol = project.find(modname, name)
    if symbol is None or not isinstance(symbol.node, ast.ClassDef):
        return None
    keys: dict[str, dict[str, Any]] = {}
    for cls in reversed(class_mro(project, symbol)):
        assert isinstance(cls.node, ast.ClassDef)
        total = _total(cls.node)
        for item in annotated_fields(cls.node):
            item["required"] = _required(item["annotation"], total)
            keys[item["name"]] = item
    return {"module": symbol.module, "keys": list(keys.values()),
            "bases": [ast.unparse(b) for b in symbol.node.bases]}


def _total(cls: ast.ClassDef) -> bool:
    for keyword in cls.keywords:
        if keyword.arg == "total" and isinstance(keyword.value, ast.Constant):
            return bool(keyword.value.value)
    return True


def _required(annotation: str | None, total: bool) -> bool:
    text = (annotation or "").strip("'\"")
    if re.match(r"^(typing(_extensions)?\.)?NotRequired\[", text):
        return False
    if re.match(r"^(typing(_extensions)?\.)?Required\[", text):
        return True
    return total


def enum_members(project: Project, modname: str, name: str) -> dict[str, Any] | None:
    symbol = project.find(modname, name)
    if symbol is None or not isinstance(symbol.node, ast.ClassDef):
        return None
    members = {}
    for stmt in symbol.node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                and isinstance(stmt.targets[0], ast.Name):
            members[stmt.targets[0].id] = ast.unparse(stmt.value)
    return {"module": symbol.module, "members": members,
            "bases": [ast.unparse(b) for b in symbol.node.bases]}


# ---------------------------------------------------------------------------
# Surface sections
# ---------------------------------------------------------------------------

LLM_METHODS = ("__init__", "generate", "chat", "beam_search", "get_tokenizer")
ENGINE_METHODS = ("__init__", "generate", "abort", "get_tokenizer", "from_engine_args")
ASYNC_ENGINE_MODULE = "vllm.engine.async_llm_engine"
ASYNC_LLM_MODULE = "vllm.v1.engine.async_llm"
PROMPT_NAMES = ("TextPrompt", "TokensPrompt", "PromptType", "PromptInputs",
                "PromptStrictInputs", "PromptInput", "SingletonPrompt")
PARAMS_CLASSES = ("SamplingParams", "BeamSearchParams", "GuidedDecodingParams",
                  "StructuredOutputsParams")
OUTPUT_CLASSES = ("RequestOutput", "CompletionOutput")
TOOL_DIRS = ("vllm/entrypoints/openai/tool_parsers", "vllm/tool_parsers")
REASONING_DIRS = ("vllm/entrypoints/openai/reasoning_parsers", "vllm/reasoning")
MODEL_FILES = ("vllm/model_executor/models/__init__.py", "vllm/model_executor/models/registry.py")
GLM_RE = re.compile(r"GLM|Glm")


def class_record(project: Project, modname: str, name: str,
                 methods: Sequence[str]) -> dict[str, Any] | None:
    symbol = project.find(modname, name)
    if symbol is None or not isinstance(symbol.node, ast.ClassDef):
        return None
    return {
        "module": modname,
        "defined_in": f"{symbol.module}:{symbol.name}",
        "alias_of": symbol.alias_of,
        "bases": [ast.unparse(b) for b in symbol.node.bases],
        "mro": [f"{c.module}:{c.name}" for c in class_mro(project, symbol)],
        "methods": class_methods(project, symbol, methods),
    }


def record_llm(project: Project) -> dict[str, Any] | None:
    record = class_record(project, "vllm.entrypoints.llm", "LLM", LLM_METHODS)
    if record is None:
        symbol = project.find("vllm", "LLM")
        if symbol is not None:
            record = class_record(project, symbol.module, symbol.name, LLM_METHODS)
    return record


def record_async_engine(project: Project) -> dict[str, Any] | None:
    record = class_record(project, ASYNC_ENGINE_MODULE, "AsyncLLMEngine", ENGINE_METHODS)
    if record is not None:
        record["conditional_alias"] = conditional_alias(project, ASYNC_ENGINE_MODULE,
                                                        "AsyncLLMEngine")
    return record


def record_async_llm(project: Project) -> dict[str, Any] | None:
    return class_record(project, ASYNC_LLM_MODULE, "AsyncLLM", ENGINE_METHODS)


def defining_module(project: Project, modname: str, name: str) -> str | None:
    symbol = project.find(modname, name)
    return None if symbol is None else symbol.module


def record_prompts(project: Project) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PROMPT_NAMES:
        module = defining_module(project, "vllm.inputs", name)
        entry: dict[str, Any] | None = None
        if module is not None:
            entry = {"module": module,
                     "importable_from_vllm": importable(project, "vllm", name),
                     "importable_from_vllm_inputs": importable(project, "vllm.inputs", name)}
            if name in ("TextPrompt", "TokensPrompt"):
                entry.update(typed_dict(project, module, name) or {})
        elif importable(project, "vllm", name):
            entry = {"module": defining_module(project, "vllm", name),
                     "importable_from_vllm": True, "importable_from_vllm_inputs": False}
        out[name] = entry
    return out


def importable(project: Project, modname: str, name: str, depth: int = 0) -> bool:
    """Whether ``from <modname> import <name>`` works at run time."""
    module = project.module(modname)
    if module is None or depth > 10:
        return False
    if any(b.where != "type_checking" for b in module.bindings.get(name, [])):
        return True
    if name in lazy_attrs(module):
        return True
    return any(importable(project, star, name, depth + 1) for star in module.stars)


def record_params(project: Project) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PARAMS_CLASSES:
        out[name] = params_class(project, "vllm.sampling_params", name)
    return out


def record_outputs(project: Project) -> dict[str, Any]:
    return {name: params_class(project, "vllm.outputs", name) for name in OUTPUT_CLASSES}


def record_engine_args(project: Project) -> dict[str, Any]:
    return {name: params_class(project, "vllm.engine.arg_utils", name)
            for name in ("EngineArgs", "AsyncEngineArgs")}


def record_envs(project: Project) -> dict[str, Any]:
    module = project.module("vllm.envs")
    if module is None:
        return {"module_exists": False, "VLLM_USE_V1": None}
    default = None
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "VLLM_USE_V1":
                    default = _getenv_default(value, "VLLM_USE_V1")
                    break
    return {"module_exists": True, "VLLM_USE_V1": default}


def _getenv_default(expr: ast.AST, name: str) -> str | None:
    for node in ast.walk(expr):
        if isinstance(node, ast.Call) and len(node.args) >= 2 \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == name \
                and isinstance(node.args[1], ast.Constant):
            return str(node.args[1].value)
    return None


def record_exports(project: Project) -> dict[str, Any]:
    module = project.module("vllm")
    if module is None:
        return {"all": None, "names": {}, "lazy": False}
    all_names = _all_names(module)
    lazy = lazy_attrs(module)
    candidates = sorted(set(all_names or []) | set(lazy) | _runtime_import_names(module))
    names = {}
    for name in candidates:
        symbol = project.find("vllm", name)
        names[name] = None if symbol is None else symbol.module
    return {"all": all_names, "names": names, "lazy": bool(lazy)}


def _all_names(module: Module) -> list[str] | None:
    for binding in module.bindings.get("__all__", []):
        stmt = binding.node
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        if value is not None:
            try:
                names = ast.literal_eval(value)
            except ValueError:
                continue
            return [str(n) for n in names]
    return None


def _runtime_import_names(module: Module) -> set[str]:
    return {name for name, bindings in module.bindings.items()
            if any(isinstance(b.node, ast.ImportFrom) and b.where != "type_checking"
                   and (absolute_module(module, b.node).startswith("vllm.")) for b in bindings)}


def record_parsers(project: Project, directories: Sequence[str], dict_name: str) -> dict[str, Any]:
    parsers: dict[str, dict[str, str]] = {}
    styles, found_dirs = set(), []
    for directory in directories:
        package = directory.replace("/", ".")
        module = project.module(package)
        if module is None:
            continue
        found_dirs.append(directory)
        lazy = _lazy_registry(module, dict_name)
        if lazy:
            styles.add("lazy")
            parsers.update(lazy)
        decorated = _decorated_parsers(project, directory)
        if decorated:
            styles.add("decorator")
            parsers.update(decorated)
    return {"style": sorted(styles), "directories": found_dirs,
            "parsers": dict(sorted(parsers.items()))}


def _lazy_registry(module: Module, dict_name: str) -> dict[str, dict[str, str]]:
    out = {}
    for stmt in module.tree.body:
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if not isinstance(value, ast.Dict) or not any(
                isinstance(t, ast.Name) and t.id == dict_name for t in targets):
            continue
        for key, item in zip(value.keys, value.values):
            try:
                name = ast.literal_eval(key) if key is not None else None
                file_name, class_name = ast.literal_eval(item)
            except (ValueError, TypeError):
                continue
            out[str(name)] = {"class": str(class_name), "module": f"{module.name}.{file_name}"}
    return out


def _decorated_parsers(project: Project, directory: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for path in project.tree.listdir(directory):
        modname = path[:-3].replace("/", ".")
        if modname.endswith(".__init__"):
            continue
        module = project.module(modname)
        for cls in (s for s in (module.tree.body if module else []) if isinstance(s, ast.ClassDef)):
            for name in _registered_names(cls):
                out[name] = {"class": cls.name, "module": modname}
    return out


def _registered_names(cls: ast.ClassDef) -> list[str]:
    names: list[str] = []
    for deco in cls.decorator_list:
        if not (isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("register_module")):
            continue
        arg = deco.args[0] if deco.args else next(
            (k.value for k in deco.keywords if k.arg == "name"), None)
        try:
            value = ast.literal_eval(arg) if arg is not None else cls.name
        except ValueError:
            continue
        names.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return names


def record_models(project: Project) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for path in MODEL_FILES:
        module = project.module(path[:-3].replace("/", ".").removesuffix(".__init__"))
        if module is None or module.path != path:
            continue
        for dict_name, value in _module_dicts(module):
            for key, item in zip(value.keys, value.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                        and GLM_RE.search(key.value):
                    _add_model(out, key.value, dict_name, path, item)
    return dict(sorted(out.items()))


def _module_dicts(module: Module) -> Iterator[tuple[str, ast.Dict]]:
    for stmt in module.tree.body:
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if isinstance(value, ast.Dict):
            for target in targets:
                if isinstance(target, ast.Name):
                    yield target.id, value


def _add_model(out: dict[str, Any], arch: str, dict_name: str, path: str, item: ast.expr) -> None:
    try:
        literal = ast.literal_eval(item)
    except ValueError:
        literal = None
    entry: dict[str, Any] = {"dict": dict_name, "file": path.rsplit("/", 1)[-1]}
    pair = isinstance(literal, tuple) and len(literal) == 2
    if pair and all(isinstance(x, str) for x in literal):
        entry.update({"module": literal[0], "class": literal[1], "value": None})
    else:
        entry.update({"module": None, "class": None, "value": ast.unparse(item)})
    out.setdefault(arch, {"entries": []})["entries"].append(entry)


def record_surface(release: Release, tree: SourceTree) -> dict[str, Any]:
    project = Project(tree)
    return {
        "schema": SCHEMA,
        "version": release.version,
        "source": release.source(),
        "exports": record_exports(project),
        "llm": record_llm(project),
        "async_llm_engine": record_async_engine(project),
        "async_llm": record_async_llm(project),
        "prompts": record_prompts(project),
        "params": record_params(project),
        "request_output_kind": enum_members(project, "vllm.sampling_params", "RequestOutputKind"),
        "engine_args": record_engine_args(project),
        "outputs": record_outputs(project),
        "envs": record_envs(project),
        "tool_parsers": record_parsers(project, TOOL_DIRS, "_TOOL_PARSERS_TO_REGISTER"),
        "reasoning_parsers": record_parsers(project, REASONING_DIRS,
                                            "_REASONING_PARSERS_TO_REGISTER"),
        "models": record_models(project),
    }


def dump(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------
# _history.py: first/last version tables
# ---------------------------------------------------------------------------

Span = tuple[str, Optional[str]]


def load_surfaces(directory: Path = SURFACES) -> dict[str, dict[str, Any]]:
    surfaces = {}
    for path in directory.glob("*.json"):
        data = json.loads(path.read_text())
        surfaces[data["version"]] = data
    return dict(sorted(surfaces.items(), key=lambda item: Version(item[0])))


def _field_names(entry: dict[str, Any] | None) -> list[str]:
    if not entry:
        return []
    return [f["name"] for f in entry["fields"]
            if not f["name"].startswith("_") and f.get("kind") not in ("var_positional",
                                                                        "var_keyword")]


def presence(surfaces: dict[str, dict[str, Any]], names_of: Any) -> dict[str, list[bool]]:
    per_version = [set(names_of(s)) for s in surfaces.values()]
    every = sorted(set().union(*per_version)) if per_version else []
    return {name: [name in names for names in per_version] for name in every}


def newest_span(versions: list[str], present: list[bool]) -> Span:
    """The run of consecutive releases that contains the newest release having it."""
    end = max(i for i, flag in enumerate(present) if flag)
    start = end
    while start > 0 and present[start - 1]:
        start -= 1
    return versions[start], (versions[end + 1] if end + 1 < len(versions) else None)


def span_table(surfaces: dict[str, dict[str, Any]], names_of: Any) -> dict[str, Span]:
    versions = list(surfaces)
    return {name: newest_span(versions, flags)
            for name, flags in presence(surfaces, names_of).items()}


def _sampling(s: dict[str, Any]) -> list[str]:
    return _field_names(s["params"].get("SamplingParams"))


def _beam(s: dict[str, Any]) -> list[str]:
    return _field_names(s["params"].get("BeamSearchParams"))


def _structured(s: dict[str, Any]) -> list[str]:
    return _field_names(s["params"].get("StructuredOutputsParams")) + \
        _field_names(s["params"].get("GuidedDecodingParams"))


def _engine(s: dict[str, Any]) -> list[str]:
    return _field_names(s["engine_args"].get("EngineArgs"))


def _async_only(s: dict[str, Any]) -> list[str]:
    base = set(_engine(s))
    return [n for n in _field_names(s["engine_args"].get("AsyncEngineArgs")) if n not in base]


def _tools(s: dict[str, Any]) -> list[str]:
    return list(s["tool_parsers"]["parsers"])


def _reasoning(s: dict[str, Any]) -> list[str]:
    return list(s["reasoning_parsers"]["parsers"])


def sampling_defaults(surfaces: dict[str, dict[str, Any]]) -> dict[str, str]:
    newest = list(surfaces.values())[-1]["params"]["SamplingParams"]
    return {f["name"]: f["default"] for f in newest["fields"]
            if not f["name"].startswith("_") and f["default"] is not None}


def _literal_default(source: str | None) -> bool:
    if source is None:
        return False
    try:
        ast.literal_eval(source)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def historic_defaults(surfaces: dict[str, dict[str, Any]], entries_of: Any,
                      names: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Each field's distinct literal defaults over every release, oldest first."""
    wanted = None if names is None else set(names)
    out: dict[str, list[str]] = {}
    for surface in surfaces.values():
        for entry in entries_of(surface):
            for f in (entry or {}).get("fields", []):
                name, source = f["name"], f["default"]
                if name.startswith("_") or (wanted is not None and name not in wanted):
                    continue
                if _literal_default(source) and source not in out.setdefault(name, []):
                    out[name].append(source)
    return {name: tuple(sources) for name, sources in sorted(out.items()) if sources}


def _sampling_entries(s: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [s["params"].get("SamplingParams")]


def _engine_entries(s: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [s["engine_args"].get("EngineArgs"), s["engine_args"].get("AsyncEngineArgs")]


def _historic_engine_names(surfaces: dict[str, dict[str, Any]]) -> set[str]:
    """Engine arguments the newest release no longer has."""
    spans = {**span_table(surfaces, _engine), **span_table(surfaces, _async_only)}
    return {name for name, (_, until) in spans.items() if until is not None}


def _format_defaults(name: str, table: dict[str, tuple[str, ...]]) -> str:
    lines = [f"{name}: dict[str, tuple[str, ...]] = {{"]
    lines += [f"    {key!r}: ({', '.join(repr(s) for s in sources)},)," for key, sources in table.items()]
    return "\n".join(lines) + "\n}\n"


HISTORY_HEADER = '''\
# generated by matrix/record.py, do not edit.
# Regenerate with: python matrix/record.py --history
"""When each vLLM field, argument and parser name existed (from matrix/surfaces/).

Each table maps a name to ``(first, until)``: the first release having it and
the first later release not having it any more (``None``: still present in
the newest recorded release).  When a name disappeared and came back, the
span is the run of consecutive releases containing the newest release that
has it.  Private (``_``-prefixed) fields are left out.
"""

from __future__ import annotations

__all__ = [
    "ASYNC_ENGINE_ARGS",
    "BEAM_SEARCH_FIELDS",
    "ENGINE_ARGS",
    "ENGINE_HISTORIC_DEFAULTS",
    "KNOWN_VERSIONS",
    "NEWEST",
    "OLDEST",
    "REASONING_PARSERS",
    "SAMPLING_DEFAULTS",
    "SAMPLING_FIELDS",
    "SAMPLING_HISTORIC_DEFAULTS",
    "STRUCTURED_OUTPUTS_FIELDS",
    "TOOL_PARSERS",
    "supported_range",
]

'''

HISTORY_FOOTER = '''

def _last_before(until: str) -> str:
    """The newest known release older than ``until``."""
    index = KNOWN_VERSIONS.index(until)
    return KNOWN_VERSIONS[index - 1] if index > 0 else until


def supported_range(table: dict[str, tuple[str, str | None]], name: str) -> str:
    """Human-readable releases having ``name``: ``">=0.11.0"``, ``"0.6.3 .. 0.11.2"``,
    ``"0.10.0"`` (one release) or ``"never"``."""
    span = table.get(name)
    if span is None:
        return "never"
    first, until = span
    if until is None:
        return f">={first}"
    last = _last_before(until)
    return first if last == first else f"{first} .. {last}"
'''


def _format_table(name: str, table: dict[str, Span]) -> str:
    lines = [f"{name}: dict[str, tuple[str, str | None]] = {{"]
    for key, (first, until) in sorted(table.items()):
        lines.append(f"    {key!r}: ({first!r}, {until!r}),")
    return "\n".join(lines) + "\n}\n"


def render_history(surfaces: dict[str, dict[str, Any]]) -> str:
    versions = list(surfaces)
    parts = [HISTORY_HEADER]
    parts.append("KNOWN_VERSIONS: tuple[str, ...] = (\n"
                 + "".join(f"    {v!r},\n" for v in versions) + ")\n")
    parts.append(f"NEWEST: str = {versions[-1]!r}\nOLDEST: str = {versions[0]!r}\n\n")
    tables = [("SAMPLING_FIELDS", _sampling), ("ENGINE_ARGS", _engine),
              ("ASYNC_ENGINE_ARGS", _async_only), ("BEAM_SEARCH_FIELDS", _beam),
              ("STRUCTURED_OUTPUTS_FIELDS", _structured), ("TOOL_PARSERS", _tools),
              ("REASONING_PARSERS", _reasoning)]
    for name, names_of in tables:
        parts.append(_format_table(name, span_table(surfaces, names_of)) + "\n")
    defaults = sampling_defaults(surfaces)
    parts.append("SAMPLING_DEFAULTS: dict[str, str] = {\n"
                 + "".join(f"    {k!r}: {v!r},\n" for k, v in sorted(defaults.items())) + "}\n\n")
    parts.append(_format_defaults("SAMPLING_HISTORIC_DEFAULTS", historic_defaults(surfaces, _sampling_entries)))
    parts.append("\n" + _format_defaults("ENGINE_HISTORIC_DEFAULTS", historic_defaults(
        surfaces, _engine_entries, _historic_engine_names(surfaces))))
    return "".join(parts) + HISTORY_FOOTER


def render_versions(surfaces: dict[str, dict[str, Any]]) -> str:
    versions = list(surfaces)
    return dump({"newest": versions[-1], "oldest": versions[0], "versions": versions})


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def record_release(release: Release, offline: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    tree = open_tree(release, offline)
    surface = record_surface(release, tree)
    fetched = getattr(getattr(tree, "remote", None), "fetched", None)
    how = f"{release.size / 1e6:.1f} MB {release.kind}"
    if fetched is not None:
        how += f", {fetched / 1e6:.2f} MB fetched by range"
    log(f"{release.version:>12}  {how}  {time.monotonic() - started:.1f}s")
    return surface


def release_from_source(version: str, source: dict[str, Any]) -> Release:
    return Release(version, source["kind"], source["filename"], source["url"], source["url"],
                   source["sha256"], int(source["size"]))


def write_outputs(surfaces: dict[str, dict[str, Any]]) -> None:
    SURFACES.mkdir(parents=True, exist_ok=True)
    for version, surface in surfaces.items():
        (SURFACES / f"{version}.json").write_text(dump(surface))


def regenerate_indexes() -> None:
    surfaces = load_surfaces()
    VERSIONS_FILE.write_text(render_versions(surfaces))
    HISTORY_FILE.write_text(render_history(surfaces))
    log(f"wrote {VERSIONS_FILE.relative_to(ROOT)} and {HISTORY_FILE.relative_to(ROOT)} "
        f"({len(surfaces)} releases)")


def cmd_record(versions: list[str], every: bool) -> int:
    releases = releases_from_index(fetch_index())
    wanted = releases if every else [r for r in releases if r.version in set(versions)]
    missing = set(versions) - {r.version for r in wanted}
    if missing:
        log(f"not on PyPI (or not a final release >= {OLDEST}): {', '.join(sorted(missing))}")
        return 2
    log(f"recording {len(wanted)} release(s)")
    write_outputs({r.version: record_release(r) for r in wanted})
    regenerate_indexes()
    return 0


def unrecorded(releases: list[Release], recorded: Iterable[str]) -> list[Release]:
    """The index's releases that have no surface in ``matrix/surfaces/`` yet."""
    have = set(recorded)
    return [r for r in releases if r.version not in have]


def regenerate_tables() -> int:
    """Rewrite the compat tables (README.md, matrix/COMPATIBILITY.md) from the new _history.py."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.call([sys.executable, str(HERE / "compat_table.py")], env=env)


def cmd_new() -> int:
    """Record every release the index has and matrix/ lacks, then every generated file."""
    missing = unrecorded(releases_from_index(fetch_index()), load_surfaces())
    if not missing:
        log(f"nothing to record: matrix/ has every release on the index (newest {_recorded_newest()})")
        return 0
    log(f"recording {len(missing)} new release(s): {', '.join(r.version for r in missing)}")
    write_outputs({r.version: record_release(r) for r in missing})
    regenerate_indexes()
    return regenerate_tables()


def cmd_check_newest() -> int:
    """Exit 1 when the package index has a release (>= 0.4.0, final/post) that matrix/ lacks."""
    releases = releases_from_index(fetch_index())
    missing = unrecorded(releases, load_surfaces())
    newest = releases[-1].version if releases else "none"
    if missing:
        log(f"matrix/ is behind the index: newest on the index {newest}, recorded {_recorded_newest()}; "
            f"not recorded: {', '.join(r.version for r in missing)}. Run: python matrix/record.py --new")
        return 1
    log(f"up to date: newest release on the index {newest} is recorded")
    return 0


def _recorded_newest() -> str:
    data: dict[str, Any] = json.loads(VERSIONS_FILE.read_text()) if VERSIONS_FILE.exists() else {}
    return str(data.get("newest", "none"))


def cmd_check(versions: list[str]) -> int:
    checked_in = load_surfaces()
    wanted = [v for v in checked_in if not versions or v in versions]
    differ = []
    for version in wanted:
        old = checked_in[version]
        try:
            new = record_release(release_from_source(version, old["source"]), offline=True)
        except FileNotFoundError as exc:
            log(f"{version}: archive not cached ({exc}); run: python matrix/record.py {version}")
            differ.append(version)
            continue
        if dump(new) != dump(old):
            differ.append(version)
            log(f"{version}: DIFFERS from matrix/surfaces/{version}.json")
    differ += _check_generated(checked_in)
    log("check: " + ("OK" if not differ else f"{len(differ)} difference(s)"))
    return 1 if differ else 0


def _check_generated(surfaces: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for path, text in ((VERSIONS_FILE, render_versions(surfaces)),
                       (HISTORY_FILE, render_history(surfaces))):
        if not path.exists() or path.read_text() != text:
            log(f"{path.relative_to(ROOT)} is out of date; run: python matrix/record.py --history")
            out.append(str(path))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("versions", nargs="*", help="releases to record (e.g. 0.5.5 0.6.3)")
    parser.add_argument("--all", action="store_true", help="record every release >= 0.4.0")
    parser.add_argument("--check", action="store_true",
                        help="re-parse cached archives and compare with the checked-in files")
    parser.add_argument("--history", action="store_true",
                        help="regenerate versions.json and _history.py from matrix/surfaces/")
    parser.add_argument("--new", action="store_true",
                        help="record the releases the index has and matrix/ lacks, regenerate every table")
    parser.add_argument("--check-newest", action="store_true",
                        help="exit 1 when the index has a release matrix/ has not recorded (network)")
    args = parser.parse_args(argv)
    if args.new:
        return cmd_new()
    if args.check_newest:
        return cmd_check_newest()
    if args.check:
        return cmd_check(args.versions)
    if args.all or args.versions:
        return cmd_record(args.versions, args.all)
    if args.history:
        regenerate_indexes()
        return 0
    parser.print_usage(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
