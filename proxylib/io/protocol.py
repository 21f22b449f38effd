"""The opener protocol every file owner implements, and the registry of opener factories.

An opener owns (or, for objects the caller holds, declines to own) the handle
of one proxy's file. The proxy, the executor and :mod:`proxylib.daskarray`
talk to it only through :class:`Opener`, never through ``isinstance`` or its
private attributes.

:func:`make_opener <proxylib.io.opening.make_opener>` asks the factories
registered here first (a URL, an fsspec file: :mod:`proxylib.io.remote`
registers on import), then falls back to paths and file objects. A package
that reads another kind of file registers its own factory; ``io.opening``
imports none of them.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, ContextManager, Hashable, List, Optional, Protocol, runtime_checkable

from .sources import ByteSource


@runtime_checkable
class Opener(Protocol):
    """What a proxy needs from the object that owns its file's handle.

    * ``source()``: a context manager yielding the :class:`ByteSource` for
      one access (opened, checked and, for ``keep_open=False``, closed again);
    * ``opened()``: a context manager yielding the open file object of one
      access (a path opener's ``OpenFile``), or None for openers without one;
    * ``identity()``: plain, hashable data naming what is read (path and
      fingerprint, URL and ETag, or the file object), for tokens and caches;
    * ``close()``: release a kept handle now (re-opened on the next access);
    * ``clone()``: the same policy and identity, sharing no handle.
    """

    keep_open: bool

    def source(self) -> ContextManager[ByteSource]: ...

    def opened(self) -> ContextManager[Any]: ...

    def identity(self) -> Hashable: ...

    @property
    def is_open(self) -> bool: ...

    def close(self) -> None: ...

    def clone(self) -> "Opener": ...


#: ``factory(file_like) -> Opener or None``; None means "not mine".
OpenerFactory = Callable[[Any], Optional[Opener]]

_factories: List[OpenerFactory] = []
_factories_guard = threading.Lock()


def register_opener(factory: OpenerFactory) -> OpenerFactory:
    """Let ``factory`` claim file-like objects before paths and file objects are tried.

    Registering the same factory twice has no effect. Returns ``factory``, so
    it can be used as a decorator.
    """
    with _factories_guard:
        if factory not in _factories:
            _factories.append(factory)
    return factory


def registered_opener_for(file_like: Any) -> Optional[Opener]:
    """The opener the first claiming factory makes for ``file_like``, or None."""
    for factory in tuple(_factories):
        opener = factory(file_like)
        if opener is not None:
            return opener
    return None


__all__ = ["Opener", "OpenerFactory", "register_opener", "registered_opener_for"]
