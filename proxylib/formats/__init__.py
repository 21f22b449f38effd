"""File formats whose readers embed :class:`~proxylib.ArrayProxy`.

* :mod:`.fields` - NIfTI header layouts, datatype and transform codes;
* :mod:`.affines` - quaternion and affine arithmetic shared by the headers;
* :mod:`.extensions` - NIfTI header extensions (kept verbatim on round trip);
* :mod:`.niftiheader` - the header object: parsing, validation, accessors;
* :mod:`.xforms` - qform/sform codes, best affine, load-time repairs;
* :mod:`.headerinfo` - header mapping API, units, intent, dim_info, ``str``;
* :mod:`.niftiimage` - the image: loading from a file map and saving;
* :mod:`.imagexforms` - image affine kept in step with the header; on-disk dtype;
* :mod:`.savescaling` - scale factors for integer on-disk types (as nibabel);
* :mod:`.slicing` - ``img.slicer`` and the lazy :class:`~.slicing.SlicedProxy`;
* :mod:`.blocks` - streaming an array (or proxy) to a file in bounded blocks;
* :mod:`.nifti1`, :mod:`.nifti2` - the two NIfTI formats;
* :mod:`.mgh` - FreeSurfer MGH/MGZ;
* :mod:`.analyze`, :mod:`.analyzeimage` - ANALYZE 7.5 as SPM writes it, with
  :mod:`.matv4` for the ``.mat`` transform beside the pair.
"""

from .analyze import AnalyzeHeader
from .analyzeimage import AnalyzeImage
from .mgh import MGHHeader, MGHImage
from .nifti1 import Nifti1Header, Nifti1Image
from .nifti2 import Nifti2Header, Nifti2Image

__all__ = ["Nifti1Header", "Nifti1Image", "Nifti2Header", "Nifti2Image", "MGHHeader",
           "MGHImage", "AnalyzeHeader", "AnalyzeImage"]
