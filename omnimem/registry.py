"""Name -> factory registries with lazy ``"module:attr"`` targets.

Heavy libraries are imported only when a name is resolved, so ``import omnimem`` stays fast. An
unknown name lists the known ones; a missing optional dependency surfaces as
:class:`~omnimem.errors.BackendUnavailable` from the adapter itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from omnimem.errors import ConfigError

__all__ = ["Registry"]


class Registry:
    """A named table of factories. ``register("name", "pkg.mod:attr")`` or a callable."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str | Callable[..., Any]] = {}

    def register(self, name: str, target: str | Callable[..., Any]) -> None:
        if not name or not isinstance(name, str):
            raise ConfigError(f"{self.kind} names must be non-empty strings, got {name!r}")
        self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name`` (imported on first use)."""
        try:
            target = self._targets[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = importlib.import_module(module)
            for part in attr.split("."):
                target = getattr(target, part)
            self._targets[name] = target
        return target

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)
