"""An image with an affine kept beside its header (ANALYZE, MGH)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from ..images import DataobjImage, FileMap


class AffineImage(DataobjImage):
    """``dataobj`` (array or proxy), ``affine`` and ``header``; the header follows the data.

    Subclasses write the data's shape, stored type and the affine into their
    header in :meth:`update_header`, and may reshape array data first in
    :meth:`prepare_dataobj`.
    """

    def __init__(self, dataobj: Any, affine: Any, header: Any = None,
                 extra: Optional[Mapping] = None, file_map: Optional[FileMap] = None) -> None:
        if not hasattr(dataobj, "shape"):
            dataobj = np.asanyarray(dataobj)
        super().__init__(self.prepare_dataobj(dataobj), header=header, extra=extra,
                         file_map=file_map)
        self._affine = None if affine is None else np.array(affine, dtype=np.float64)
        self.update_header()

    @staticmethod
    def prepare_dataobj(dataobj: Any) -> Any:
        """The data object as this format stores it (unchanged by default)."""
        return dataobj

    @property
    def affine(self) -> Optional[np.ndarray]:
        return self._affine

    def update_header(self) -> None:
        raise NotImplementedError
