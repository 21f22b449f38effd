"""``proxylib.load(url)``: a NIfTI image whose proxy reads by byte range."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

from ...errors import HeaderError
from .files import RemoteFile
from .gzipped import RemoteGzipFile
from .opening import open_url

def load_url(url: Any, *, mmap: Union[bool, str] = True, keep_file_open: Optional[bool] = None,
             storage_options: Optional[Dict[str, Any]] = None) -> Any:
    """``proxylib.load`` for a URL or an open fsspec file: header now, data by range.

    Reads the header (one request for a plain file, one or two for gzip) and
    returns a NIfTI image whose ``dataobj`` proxy reads only the ranges keys
    need. Single files (``.nii``, ``.nii.gz``) and pairs (``.hdr`` + ``.img``).
    """
    from ...arrayproxy import ArrayProxy
    from ...formats.niftiimage import read_header
    from ...images import FileHolder
    from ...loading import SNIFF_BYTES, sniff_class
    from ...spec import ArraySpec

    if isinstance(url, RemoteFile):  # opened by the caller (open_url(url, ...))
        if storage_options:
            raise ValueError(f"{url.url}: storage_options go to open_url, not to load")
        header_file = url
        header_file.prefetch_head()
    else:
        header_file = open_url(url, storage_options)
    name = header_file.url
    header_file.seek(0)
    block = header_file.read(SNIFF_BYTES)
    image_class = sniff_class(block, name)
    holder = FileHolder(fileobj=header_file)
    header = read_header(image_class.header_class, holder)
    if header.is_single:
        data_file = header_file
    else:
        data_file = open_url(_pair_image_url(name), header_file.storage_options,
                             retries=header_file.retries, backoff=header_file.backoff,
                             ignored_range=header_file.ignored_range)
    if not isinstance(data_file, RemoteGzipFile):
        header.check_data_size(data_file.size, path=data_file.url)
    slope, inter = header.get_slope_inter()
    spec = ArraySpec(header.get_data_shape(), header.get_data_dtype(),
                     offset=header.get_data_offset(), order="F", slope=slope, inter=inter)
    proxy = ArrayProxy(data_file, spec, mmap=mmap, keep_file_open=keep_file_open,
                       cost=data_file.cost)
    file_map = {"header": holder, "image": FileHolder(fileobj=data_file)}
    return image_class(proxy, header.get_best_affine(), header=header, file_map=file_map)


def _pair_image_url(header_url: str) -> str:
    stem, dot, suffix = header_url.rpartition(".")
    compressed = suffix.lower() == "gz"
    if compressed:
        stem, dot, suffix = stem.rpartition(".")
    if suffix.lower() != "hdr":
        raise HeaderError(f"{header_url}: the header says the data is in a separate .img "
                          "file, but the URL does not end in .hdr[.gz]", path=header_url)
    return stem + ".img" + (".gz" if compressed else "")
