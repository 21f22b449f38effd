"""Field access shared by headers stored as one numpy structured record."""

from __future__ import annotations

from typing import Any, Iterator, Tuple

import numpy as np


class RecordFieldsMixin:
    """``hdr['dim']``, ``'dim' in hdr``, ``list(hdr)`` over the record ``self._struct``.

    ``hdr[name]`` of an array field is a view, so ``hdr['dim'][1] = 4`` writes
    through to the header.
    """

    _struct: np.ndarray

    def keys(self) -> Tuple[str, ...]:
        return self._struct.dtype.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    def __getitem__(self, name: str) -> Any:
        return self._struct[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._struct[name] = value
