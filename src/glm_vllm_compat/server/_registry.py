"""One lazy registry pattern for tool parsers, reasoning parsers and GLM families.

``name -> (module, attribute)`` is recorded up front; the module is imported
on first use, so registering costs nothing and adding an entry is one row::

    PARSERS = LazyRegistry("tool parser", ToolParser)
    PARSERS.register("glm45", "pkg.glm45", "Glm45ToolParser")
    PARSERS.get("glm45")   # imports pkg.glm45, checks the class

An unknown name raises the registry's ``KeyError`` subclass listing the valid
names; an entry that resolves to the wrong kind of object raises ``TypeError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["LazyRegistry", "UnknownName"]

T = TypeVar("T")


class UnknownName(KeyError):
    """No entry of that name; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown name"


class LazyRegistry(Generic[T]):
    """Lazily imported entries of one kind (classes or instances of ``base``)."""

    def __init__(
        self,
        kind: str,
        base: type[Any],
        entries: Mapping[str, tuple[str, str]] | None = None,
        *,
        instances: bool = False,
        error: type[KeyError] = UnknownName,
    ) -> None:
        self.kind = kind
        self._base = base
        self._instances = instances
        self._error = error
        self._entries: dict[str, tuple[str, str]] = dict(entries or {})

    def register(self, name: str, module: str, attribute: str) -> None:
        """Register (or replace) ``name``: ``module`` is imported on first use."""
        self._entries[name] = (module, attribute)

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def get(self, name: str) -> T:
        """The entry ``name``, imported now; the registry's ``KeyError`` if unknown."""
        try:
            module_name, attribute = self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise self._error(f"unknown {self.kind} {name!r}; valid names: {valid}") from None
        value = getattr(importlib.import_module(module_name), attribute)
        check: Callable[[Any], bool] = (
            (lambda v: isinstance(v, self._base))
            if self._instances
            else (lambda v: isinstance(v, type) and issubclass(v, self._base))
        )
        if not check(value):
            raise TypeError(f"{module_name}.{attribute} is not a {self._base.__name__}")
        result: T = value
        return result
