"""One registry type for everything mvface looks up by name (models, readers, backends...).

A :class:`Registry` maps names to entries (usually factories) and knows two kinds of other
names, as timm's ``register_model_deprecations`` does:

* aliases: other spellings of a current name, resolved silently;
* deprecations: names a thing used to have, resolved with a :class:`FutureWarning`
  (shown to users by default, unlike ``DeprecationWarning``; the CLI prints it as one line)
  so that a rename never breaks a user's script.

:meth:`Registry.list` gives current names only.

>>> shapes = Registry[int]("shape")
>>> _ = shapes.register("square", 4)
>>> shapes.register_deprecations({"quad": "square"})
>>> shapes.list()
['square']
>>> shapes.get("quad")  # warns: shape name 'quad' is deprecated; use 'square'  # doctest: +SKIP
4
"""

from __future__ import annotations

import fnmatch
import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
R = TypeVar("R")

#: Builds the error for an unknown name from the name and the current names (sorted).
UnknownError = Callable[[str, Sequence[str]], Exception]
#: Builds the error for a name registered twice.
DuplicateError = Callable[[str], Exception]


class Registry(Generic[T]):
    """Named entries with silent aliases and warned deprecated names.

    Args:
        kind: what an entry is, in words (``"model"``, ``"dataset format"``): used in the
            default error messages and in the deprecation warning.
        unknown_error: the error for an unknown name (default: ``ValueError("unknown KIND
            'x'; available: a, b")``), so each registry keeps the message its users know.
        duplicate_error: the error for a name registered twice (default: ``ValueError("KIND
            'x' registered twice")``).
        same_again_ok: registering the very same entry under its name again is a no-op
            (modules imported twice) instead of an error.
    """

    def __init__(
        self,
        kind: str,
        *,
        unknown_error: UnknownError | None = None,
        duplicate_error: DuplicateError | None = None,
        same_again_ok: bool = False,
    ) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._deprecated: dict[str, str] = {}
        self._unknown_error = unknown_error or self._default_unknown_error
        self._duplicate_error = duplicate_error or self._default_duplicate_error
        self._same_again_ok = same_again_ok

    def _default_unknown_error(self, name: str, names: Sequence[str]) -> Exception:
        return ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(names)}")

    def _default_duplicate_error(self, name: str) -> Exception:
        return ValueError(f"{self.kind} {name!r} registered twice")

    # ------------------------------------------------------------------ registering

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: Any = None) -> Any:
        """Register ``entry`` as ``name``; without ``entry``, a decorator that does.

        Raises:
            The registry's duplicate error: ``name`` is taken (by an entry or another name).
        """

        def add(value: T) -> T:
            if name in self._entries and self._same_again_ok and self._entries[name] is value:
                return value
            if name in self._entries or name in self._aliases or name in self._deprecated:
                raise self._duplicate_error(name)
            self._entries[name] = value
            return value

        return add if entry is None else add(entry)

    def unregister(self, name: str) -> None:
        """Remove ``name`` and every alias or deprecated name pointing at it (tests)."""
        del self._entries[name]
        for table in (self._aliases, self._deprecated):
            for other in [k for k, v in table.items() if v == name]:
                del table[other]

    __delitem__ = unregister

    def _add_names(self, table: dict[str, str], names: Mapping[str, str]) -> None:
        for other, current in names.items():
            if other in self._entries or other in self._aliases or other in self._deprecated:
                raise self._duplicate_error(other)
            table[other] = current

    def register_aliases(self, aliases: Mapping[str, str]) -> None:
        """Accept each ``other -> current`` name silently (the current one may come later)."""
        self._add_names(self._aliases, aliases)

    def register_deprecations(self, renamed: Mapping[str, str]) -> None:
        """Accept each ``old -> current`` name with a :class:`FutureWarning` naming the new one."""
        self._add_names(self._deprecated, renamed)

    # ------------------------------------------------------------------ looking up

    def list(self, pattern: str = "*") -> list[str]:
        """Current names matching a shell-style ``pattern``, sorted (no aliases)."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def aliases(self) -> dict[str, str]:
        """Silent aliases: ``other -> current``."""
        return dict(self._aliases)

    def deprecations(self) -> dict[str, str]:
        """Deprecated names: ``old -> current``."""
        return dict(self._deprecated)

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a current name, an alias or a deprecated name (no warning)."""
        return name in self._entries or name in self._aliases or name in self._deprecated

    def resolve(self, name: str) -> str:
        """The current name for ``name``; a deprecated one warns (:class:`FutureWarning`).

        Raises:
            The registry's unknown error: ``name`` is none of them, or points at nothing.
        """
        if name in self._entries:
            return name
        current = self._aliases.get(name)
        if current is None and name in self._deprecated:
            current = self._deprecated[name]
            warnings.warn(
                f"{self.kind} name {name!r} is deprecated; use {current!r}",
                FutureWarning,
                stacklevel=2,
            )
        if current is None or current not in self._entries:
            raise self._unknown_error(name, self.list())
        return current

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (or the name it is an alias of)."""
        return self._entries[self.resolve(name)]

    def create(self: Registry[Callable[..., R]], name: str, /, *args: Any, **kwargs: Any) -> R:
        """Call the factory registered as ``name`` with the arguments given."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.knows(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"


def moved_attributes(old_module: str, moved: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved: ``moved`` maps each name to its new
    module, imported when the name is first used (so the old module adds no import cycle), with
    a :class:`DeprecationWarning` naming the new place.

    Usage, in the old module: ``__getattr__ = moved_attributes(__name__, {"f": "pkg.new"})``.
    """

    def resolve(name: str) -> Any:
        module = moved.get(name)
        if module is None:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        warnings.warn(
            f"{old_module}.{name} moved to {module}.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(module), name)

    return resolve
