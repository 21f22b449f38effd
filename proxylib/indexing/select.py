"""The one way in for every key: a user key -> one :class:`Selection`.

:func:`select` reads a key as ``proxy[key]`` does (numpy: basic, or
vectorized when an item is an array, list or boolean), :func:`select_orthogonal`
as ``proxy.oindex[key]`` does (zarr). Each looks at the raw items once: keys
of exact ints, slices, None and Ellipsis (the common case) go straight to the
basic resolver; any other key has its items converted in one pass
(:func:`~proxylib.indexing.advanced.convert_items`) and is resolved from the
converted items, as basic when no index array is left. Nothing after this
looks at the raw key again.
"""

from __future__ import annotations

from typing import Any, Tuple

from .advanced import check_orthogonal, convert_items, is_array, orthogonal, vectorized
from .normalize import _normalize_general, normalize_plain
from .selection import Selection


def select(key: Any, shape: Tuple[int, ...]) -> Selection:
    """``key`` resolved against ``shape`` as numpy indexing reads it."""
    items = key if type(key) is tuple else (key,)
    plain = normalize_plain(items, shape)
    if plain is not None:
        return plain
    converted = convert_items(items)
    if any(is_array(item) for item in converted):
        return vectorized(converted, shape)
    return _normalize_general(converted, shape)


def select_orthogonal(key: Any, shape: Tuple[int, ...]) -> Selection:
    """``key`` resolved against ``shape`` as zarr's orthogonal ``oindex`` reads it."""
    converted = convert_items(key if type(key) is tuple else (key,))
    check_orthogonal(converted)
    if any(is_array(item) for item in converted):
        return orthogonal(converted, shape)
    return _normalize_general(converted, shape)


class OrthogonalIndexer:
    """``proxy.oindex``: orthogonal (outer) selection, as zarr defines it.

    ``proxy.oindex[[0, 2], :, mask_z, 5]`` selects indices 0 and 2 on axis 0,
    everything on axis 1, the True entries of the 1-d ``mask_z`` on axis 2
    and index 5 on axis 3 (dropped): the result has shape ``(2, n1, mask_z.sum())``.
    Unlike numpy's vectorized indexing, every array applies to its own axis.
    """

    __slots__ = ("_proxy",)

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def __getitem__(self, key: Any) -> Any:
        return self._proxy.read_selection(select_orthogonal(key, self._proxy.shape))

    def __repr__(self) -> str:
        return f"{type(self._proxy).__name__}.oindex of {self._proxy!r}"


class VectorizedIndexer:
    """``proxy.vindex``: numpy's vectorized (advanced) indexing, by the name zarr uses.

    ``proxy.vindex[key]`` is ``proxy[key]`` for every key: integer arrays
    broadcast together and pick points (``proxy.vindex[[0, 2], [1, 3]]``
    reads two values), boolean masks select their True entries. Unlike
    zarr's ``vindex``, slices and ints may be mixed in, with numpy's rules
    for where the broadcast dimensions go.
    """

    __slots__ = ("_proxy",)

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def __getitem__(self, key: Any) -> Any:
        return self._proxy[key]

    def __repr__(self) -> str:
        return f"{type(self._proxy).__name__}.vindex of {self._proxy!r}"
