"""Read plans remembered per key *structure*: plan a loop over volumes once.

A basic key's plan depends on its integer items only through the plan's
``base``: an integer ``i`` on an axis whose elements are ``stride`` bytes
apart adds ``i * stride`` to the base and leaves every other field alone
(that axis has count 1, step ``stride`` and finish index 0 whatever ``i`` is).
So ``proxy[..., 17]`` reads what ``proxy[..., 0]`` reads, 17 volumes on.

:class:`PlanMemo` keeps, per key structure (which items are integers,
``None`` or ``Ellipsis``, and the exact slices), the plan with the integers'
share taken out of its base. A later key of the same structure is turned
into its plan by bounds-checking its integers (numpy's IndexError and
wording) and adding their share back: no normalization, no planning.
Only keys of exact ``int`` items, slices of ``int``/``None`` bounds, ``None``
and ``Ellipsis`` are remembered (so every structure is hashable and no
``1.0`` can pass for ``1``); any other key is planned in full every time.

A plan's runs also depend on the byte source's cost model, known only once
the file is open; each entry records the cost it was planned with, and
:func:`~proxylib.indexing.plan.with_runs_for` re-cuts a plan whose cost
differs (any cut reads the same bytes, so a plan is never wrong, only
possibly slower, for another cost).
"""

from __future__ import annotations

from typing import Any, Dict, Hashable, List, Optional, Tuple

from ..spec import ArraySpec
from .normalize import out_of_bounds
from .selection import NEWAXIS, Selection
from .plan import CostModel, ReadPlan

#: Key structures remembered per proxy; past this the memo starts afresh.
MEMO_LIMIT = 128

#: One remembered structure: the plan with integer shares removed from its
#: base, each integer item's (position in the key, axis, size, stride), the
#: cost planned for.
_Entry = Tuple[ReadPlan, Tuple[Tuple[int, int, int, int], ...], CostModel]

_PLAIN_TYPES = frozenset({int, slice, type(None), type(Ellipsis)})


def _structure(items: Tuple[Any, ...]) -> Optional[Tuple[Hashable, ...]]:
    """The structure of a key's items: each item's type, a slice as its bounds.

    Without slices it is ``tuple(map(type, items))``, built in C: the common
    keys (``[..., t]``, ``[i]``) pay one call for it. None when a slice
    bound is not an int or None (``1.0 == 1`` and hashes alike, but numpy
    refuses it), so such a key is never matched.
    """
    kinds = tuple(map(type, items))
    if slice not in kinds:
        return kinds
    structure: List[Hashable] = []
    for item, kind in zip(items, kinds):
        if kind is slice:
            bounds = (item.start, item.stop, item.step)
            for bound in bounds:
                if bound is not None and type(bound) is not int:
                    return None
            structure.append(bounds)
        else:
            structure.append(kind)
    return tuple(structure)


class PlanMemo:
    """Plans of one array's plain keys, per key structure (see the module docstring)."""

    __slots__ = ("_spec", "_entries")

    def __init__(self, spec: ArraySpec) -> None:
        self._spec = spec
        self._entries: Dict[Tuple[Hashable, ...], _Entry] = {}

    def find(self, key: Any, spec: ArraySpec) -> Optional[Tuple[ReadPlan, CostModel]]:
        """``(plan, cost it was made for)`` if ``key``'s structure was planned, else None.

        Raises numpy's IndexError for an integer out of range. ``spec`` is the
        array's spec now: plans of another spec are never handed out.
        """
        if spec is not self._spec:
            return None
        items = key if type(key) is tuple else (key,)
        structure = _structure(items)
        if structure is None:
            return None
        entry = self._entries.get(structure)  # only plain structures are ever added
        if entry is None:
            return None
        template, integers, cost = entry
        base = template.base
        for position, axis, size, stride in integers:
            # normalize.resolve_integer, inlined: this loop runs on every remembered read
            value = items[position]
            if value < 0:
                if value < -size:
                    raise out_of_bounds(value, axis, size)
                value += size
            elif value >= size:
                raise out_of_bounds(value, axis, size)
            base += value * stride
        # tuple.__new__: a ReadPlan without the generated __new__'s Python call
        return tuple.__new__(ReadPlan, (template[0], template[1], base) + template[3:]), cost

    def add(self, key: Any, basic: Selection, spec: ArraySpec, plan: ReadPlan,
            cost: CostModel) -> None:
        """Remember ``plan`` (of ``key``, normalized as ``basic``, on ``spec``)."""
        items = key if type(key) is tuple else (key,)
        if not _PLAIN_TYPES.issuperset(map(type, items)):
            return
        structure = _structure(items)
        if structure is None:
            return
        if spec is not self._spec:  # the array was given another spec: start afresh
            self._spec = spec
            self._entries = {}
        positions = iter([position for position, item in enumerate(items)
                          if type(item) is int])
        integers = []
        base = plan.base
        strides = spec.axis_strides
        axis = 0
        for item in basic.items:
            if item is NEWAXIS:
                continue
            if type(item) is int:
                integers.append((next(positions), axis, spec.shape[axis], strides[axis]))
                base -= item * strides[axis]
            axis += 1
        if len(self._entries) >= MEMO_LIMIT:
            self._entries = {}
        self._entries[structure] = (plan._replace(base=base), tuple(integers), cost)
