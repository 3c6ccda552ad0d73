"""The one registry behind models, analysis rules, recipes, lab experiments and checks.

A registry maps a key (a name, or any hashable such as an aten op or an ``nn.Module`` class) to an
object. It refuses duplicates, suggests close names for unknown ones and lists names by fnmatch
pattern, so every registry in cnnkit behaves the same way.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from cnnkit.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of objects, filled by :meth:`register` (usable as a decorator)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[Hashable, T] = {}

    def register(self, key: Hashable | None = None, *, override: bool = False) -> Callable[[T], T]:
        """Decorator: ``@REG.register()`` keys by ``obj.__name__``; ``@REG.register(key)`` by key.

        A second registration of the same key raises ``ValueError`` unless ``override=True``
        (an explicit user choice, never a silent overwrite).
        """

        def decorator(obj: T) -> T:
            name = key if key is not None else getattr(obj, "__name__", None)
            if name is None:
                raise ValueError(f"{self.kind}: cannot infer a key for {obj!r}; pass one")
            self.add(name, obj, override=override)
            return obj

        return decorator

    def add(self, key: Hashable, obj: T, *, override: bool = False) -> None:
        """Register ``obj`` under ``key`` (see :meth:`register`)."""
        if key in self._items and not override:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self._items[key] = obj

    def remove(self, key: Hashable) -> None:
        """Remove ``key`` (used by tests and by plug-ins that undo a registration)."""
        self._items.pop(key, None)

    def get(self, key: Hashable) -> T:
        """The object under ``key``; an unknown key raises :class:`UnknownNameError`."""
        try:
            return self._items[key]
        except KeyError:
            known = [str(k) for k in self._items]
            raise UnknownNameError(self.kind, str(key), known) from None

    def find(self, key: Hashable) -> T | None:
        """The object under ``key``, or ``None``."""
        return self._items.get(key)

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted string keys, optionally filtered by an fnmatch ``pattern`` (``"resnet*"``)."""
        names = sorted(str(k) for k in self._items)
        if pattern is None:
            return names
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]

    def items(self) -> list[tuple[Hashable, T]]:
        return list(self._items.items())

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)
