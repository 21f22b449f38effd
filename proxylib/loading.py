"""``proxylib.load`` and ``proxylib.save``: format detection from the file's own bytes.

The format is decided by the header bytes, not the file name: a gzip
signature means "decompress first"; ``sizeof_hdr`` 348 (NIfTI-1) or 540
(NIfTI-2) in either byte order picks the version; the magic says single
file (``n+1``/``n+2``) or pair (``ni1``/``ni2``, data in the sibling
``.img``). The extension only locates a pair's other file. Other formats
are tried first (``OTHER_FORMATS``): an MGH header starts with a big-endian
version 1; a 348-byte header without NIfTI magic in a ``.hdr``/``.img`` is
ANALYZE 7.5.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from .errors import HeaderError, MissingFileError
from .formats.nifti1 import Nifti1Header, Nifti1Image
from .formats.nifti2 import Nifti2Header, Nifti2Image
from .formats.analyze import AnalyzeHeader
from .formats.analyzeimage import AnalyzeImage
from .formats.mgh import MGHHeader, MGHImage
from .formats.fields import EXTENSION_FLAG_SIZE
from .formats.niftiimage import NiftiImage, read_header
from .fileholder import DataFile
from .images import (COMPRESSED_SUFFIXES, DataobjImage, FileHolder, check_load_options,
                     in_case_of, sibling_name, split_filename, split_name)
from .io.remote import RemoteFile, RemoteGzipFile, is_fsspec_file, is_url, open_url

_IMAGE_CLASSES = ((Nifti1Header, Nifti1Image), (Nifti2Header, Nifti2Image))
#: Formats other than NIfTI, tried first: (does this block start such a file?, image class).
#: Each image class builds itself from a file map (``from_file_map``).
OTHER_FORMATS: Tuple[Tuple[Callable[[bytes, str], bool], type], ...] = (
    (lambda block, path: MGHHeader.sniff(block), MGHImage),
    # 348 bytes without NIfTI magic; in a file not named as a pair's, it is a NIfTI file
    # with a broken magic, which the NIfTI header reports
    (lambda block, path: AnalyzeHeader.byteorder_of(block) is not None
     and split_filename(path)[1] in AnalyzeImage.valid_exts, AnalyzeImage),
)
#: Enough bytes to tell every supported header apart.
SNIFF_BYTES = max(header.sizeof_hdr for header, _ in _IMAGE_CLASSES)
#: The first read of a header file: every supported header and NIfTI's extension
#: flag, so the bytes that tell the format are also the ones parsed.
HEAD_BYTES = SNIFF_BYTES + EXTENSION_FLAG_SIZE


def _fspath(filename: Any) -> str:
    try:
        return os.fsdecode(os.fspath(filename))
    except TypeError:
        raise TypeError(f"filename must be a str or os.PathLike, not "
                        f"{type(filename).__name__}") from None


def _header_file(path: str) -> str:
    """The file holding the header: the ``.hdr`` sibling of an ``.img``, else ``path``."""
    _, ext, _ = split_filename(path)
    if ext != ".img":
        return path  # opening it reports a missing file
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: no such file", path=path)
    candidates = _sibling_candidates(path, ".hdr")
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    raise MissingFileError(f"{path}: an .img file needs its header next to it, but none of "
                           f"{candidates} exists", path=path)


def _sibling_candidates(path: str, extension: str) -> List[str]:
    """Names a pair's other file may have, most likely first: the extension in the
    case of ``path``'s, then in the other case; the compression suffix as written,
    then none, then ``.gz`` in either case."""
    base, ext, suffix = split_name(path)
    first = in_case_of(ext, extension)
    other = first.lower() if first != first.lower() else first.upper()
    suffixes = [suffix] + [s for s in ("",) + COMPRESSED_SUFFIXES
                           + tuple(s.upper() for s in COMPRESSED_SUFFIXES) if s != suffix]
    return [base + e + s for s in suffixes for e in (first, other)]


def _image_file(header_path: str) -> str:
    """The ``.img`` that goes with the pair header at ``header_path``."""
    _, ext, _ = split_filename(header_path)
    if ext == ".hdr":
        candidates = _sibling_candidates(header_path, ".img")
    else:  # a pair header under another name: its data is NAME.img
        base, ext, suffix = split_name(header_path)
        candidates = _sibling_candidates(base + ext + ".img" + suffix, ".img")
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    raise MissingFileError(f"{header_path}: the header says the data is in a separate .img "
                           f"file, but none of {candidates} exists; if this is a single "
                           "file, its magic field is wrong", path=header_path)


def _file_map(image_class: type, header_path: str) -> dict:
    """File holders for a sniffed image: named as its class names them, the pair's ``.img`` found."""
    if [kind for kind, _ in image_class.files_types] == ["image"]:  # any name will do
        return {"image": FileHolder(header_path)}
    file_map = image_class.filespec_to_file_map(header_path)
    if "header" in file_map:  # a pair: the data file may be compressed differently
        file_map.update(header=FileHolder(header_path),
                        image=FileHolder(_image_file(header_path)))
    return file_map


def sniff_class(block: bytes, path: str) -> type:
    """The image class for a file whose (decompressed) first bytes are ``block``."""
    for sniff, image_class in OTHER_FORMATS:
        if sniff(block, path):
            return image_class
    for header_class, image_class in _IMAGE_CLASSES:
        if header_class.byteorder_of(block) is not None:
            return image_class
    if len(block) < 4:
        raise HeaderError(f"{path}: the file holds {len(block)} bytes, too few for any image "
                          "header", path=path, field="sizeof_hdr", value=len(block))
    value = int.from_bytes(block[:4], "little", signed=True)
    raise HeaderError(f"{path}: sizeof_hdr = {value}: not a NIfTI-1 (348) or NIfTI-2 (540) "
                      "header in either byte order, nor an MGH header (version 1)", path=path, field="sizeof_hdr",
                      value=value)


def load(filename: Union[str, os.PathLike], *, mmap: Union[bool, str] = True,
         keep_file_open: Optional[bool] = None,
         storage_options: Optional[Dict[str, Any]] = None) -> DataobjImage:
    """Open a NIfTI-1, NIfTI-2, MGH/MGZ or ANALYZE 7.5 image without reading its data.

    Parameters
    ----------
    filename : str or os.PathLike
        ``.nii``, ``.nii.gz``, either file of a ``.hdr``/``.img`` pair
        (each optionally gzipped), ``.mgh``, ``.mgz`` (the header bytes, not
        the name, decide the format); or a URL (``https://...``, any fsspec URL)
        or open fsspec file, read by byte range (:mod:`proxylib.io.remote`).
    mmap, keep_file_open
        Passed to the image's :class:`~proxylib.ArrayProxy`.
    storage_options : dict, optional
        For a URL: fsspec options (credentials, endpoint, timeouts), e.g.
        ``{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}``
        for s3fs. Refused for a local path.

    Returns
    -------
    Nifti1Image, Nifti2Image, MGHImage or AnalyzeImage
        ``img.dataobj`` is an ArrayProxy; ``img.get_fdata()`` reads and caches.

    Raises
    ------
    HeaderError
        The header is of no known format or describes data the file cannot hold.
    FileNotFoundError
        The file (or a pair's other file) does not exist (a
        ``proxylib.io.opening.MissingFileError``, also a ProxyReadError).
    """
    check_load_options(mmap, keep_file_open)
    if is_url(filename) or is_fsspec_file(filename) or isinstance(filename, RemoteFile):
        # read by byte range (proxylib[remote])
        return load_url(filename, mmap=mmap, keep_file_open=keep_file_open,
                        storage_options=storage_options)
    if storage_options:
        raise ValueError(f"storage_options apply to URLs, not to the local file {filename!r}")
    header_path = _header_file(_fspath(filename))
    holder = FileHolder(header_path)
    # one open, fstat and sniff of the header file: the format, the header and,
    # for a single file, the size check and the proxy's identity all come from it
    with holder.open_for_read() as stream:
        block = stream.read(HEAD_BYTES)
        image_class = sniff_class(block, header_path)
        if not issubclass(image_class, NiftiImage):
            return image_class.from_stream(_file_map(image_class, header_path), stream, block,
                                           mmap=mmap, keep_file_open=keep_file_open)
        header = read_header(image_class.header_class, stream, header_path, head=block)
    image_holder = holder if header.is_single else FileHolder(_image_file(header_path))
    return image_class.from_header(header, {"header": holder, "image": image_holder},
                                   image_holder.data_file(stream), mmap=mmap,
                                   keep_file_open=keep_file_open)


def save(img: DataobjImage, filename: Union[str, os.PathLike]) -> None:
    """Write ``img`` to ``filename`` in its own format (NIfTI: ``.nii``, ``.nii.gz`` or a
    ``.hdr``/``.img`` pair; MGH: ``.mgh``/``.mgz``; ANALYZE: ``.hdr``/``.img``).

    Proxy data is streamed in bounded blocks. A Nifti1Image with a dimension
    over 32767 is written as NIfTI-2.
    """
    if not isinstance(img, DataobjImage):
        raise TypeError(f"proxylib.save writes proxylib images (NIfTI, MGH, ANALYZE), not "
                        f"{type(img).__name__}")
    img.to_filename(_fspath(filename))


def load_url(url: Any, *, mmap: Union[bool, str] = True, keep_file_open: Optional[bool] = None,
             storage_options: Optional[Dict[str, Any]] = None) -> Any:
    """``proxylib.load`` for a URL or an open fsspec file: header now, data by range.

    Reads the header (one request for a plain file, one or two for gzip) and
    returns an image whose ``dataobj`` proxy reads only the ranges keys need.
    Single files (``.nii``, ``.nii.gz``, ``.mgh``, ``.mgz``) and pairs (``.hdr`` +
    ``.img``, NIfTI or ANALYZE; an ANALYZE ``.mat`` is not fetched).
    """
    if isinstance(url, RemoteFile):  # opened by the caller (open_url(url, ...))
        if storage_options:
            raise ValueError(f"{url.url}: storage_options go to open_url, not to load")
        header_file = url
        header_file.prefetch_head()
    else:
        header_file = open_url(url, storage_options)
    name = header_file.url
    holder = FileHolder(fileobj=header_file)
    with holder.open_for_read() as stream:  # sniffed like a local file: bz2/zst too
        block = stream.read(HEAD_BYTES)
        image_class = sniff_class(block, name)
        if not issubclass(image_class, NiftiImage):  # MGH/MGZ, or an ANALYZE pair (no .mat)
            file_map = {"image": holder}
            if "header" in dict(image_class.files_types):
                file_map = {"header": holder,
                            "image": FileHolder(fileobj=_pair_image_file(header_file))}
            return image_class.from_stream(file_map, stream, block, mmap=mmap,
                                           keep_file_open=keep_file_open)
        header = read_header(image_class.header_class, stream, name, head=block)
    data_holder = holder if header.is_single else FileHolder(
        fileobj=_pair_image_file(header_file))
    remote = data_holder.fileobj
    data_file = data_holder.file_like  # a decompressing reader when the bytes are bz2/zst
    # a gzip file's size is its decompressed size, known only after reading it all
    known = data_file is remote and not isinstance(remote, RemoteGzipFile)
    return image_class.from_header(header, {"header": holder, "image": data_holder},
                                   DataFile(remote.size if known else None, False),
                                   mmap=mmap, keep_file_open=keep_file_open,
                                   cost=getattr(data_file, "cost", None))


def _pair_image_file(header_file: RemoteFile) -> RemoteFile:
    """The remote ``.img`` of the pair whose header is ``header_file``, opened alike."""
    return open_url(_pair_image_url(header_file.url), header_file.storage_options,
                    retries=header_file.retries, backoff=header_file.backoff,
                    ignored_range=header_file.ignored_range)


def _pair_image_url(header_url: str) -> str:
    """``…/PAIR.hdr[.gz]`` -> ``…/PAIR.img[.gz]``, in the case the URL uses."""
    if split_name(header_url)[1].lower() != ".hdr":
        raise HeaderError(f"{header_url}: the header says the data is in a separate .img "
                          "file, but the URL does not end in .hdr[.gz]", path=header_url)
    return sibling_name(header_url, ".img")
