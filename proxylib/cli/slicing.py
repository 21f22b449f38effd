"""``proxylib slice FILE KEY -o OUT``: save a slice as .npy, .nii or .nii.gz."""

from __future__ import annotations

import numpy as np

from ..errors import EmptyResultError
from ..formats.slicing import slice_affine
from ..indexing.normalize import NEWAXIS, AxisRange, is_basic, normalize_key
from ..io.atomic import replacing
from ..loading import save
from .keys import parse_key
from .urls import add_storage_options, load_any
from .output import echo

SPATIAL_AXES = 3


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "slice", help="save a slice of an image",
        description="Read KEY (numpy syntax, e.g. '..., 10:20' or '5, :, :, 0'; parsed "
                    "without eval) from FILE and save it to OUT (.npy, .nii or .nii.gz). "
                    "NIfTI output keeps the affine, moved to the slice's start and scaled by "
                    "its step on the spatial axes; an integer on a spatial axis keeps that "
                    "axis with length 1 so the affine stays meaningful.")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("-o", "--output", required=True, metavar="OUT")
    add_storage_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    out = args.output
    kind = _output_kind(out)
    image = load_any(args.file, args)
    key = parse_key(args.key)
    if kind == "npy":
        data = _non_empty(np.asarray(image.dataobj[key]), args, image.shape)
        with replacing(out, suffix=".npy") as handle:
            np.save(handle, data)
    else:
        nifti_key, affine = sliced_affine(key, image.shape, np.asarray(image.affine))
        data = _non_empty(np.asarray(image.dataobj[nifti_key]), args, image.shape)
        header = sliced_header(image.header, nifti_key)
        header.set_data_dtype(data.dtype)  # the scaled values as read, not the source's type
        save(type(image)(data, affine, header=header), out)
    echo(f"{args.file}[{args.key}] -> {out}")
    return 0


def _output_kind(out: str) -> str:
    lowered = out.lower()
    if lowered.endswith(".npy"):
        return "npy"
    if lowered.endswith((".nii", ".nii.gz")):
        return "nifti"
    raise ValueError(f"{out}: output must end in .npy, .nii or .nii.gz")


def _non_empty(data: np.ndarray, args, shape) -> np.ndarray:
    """``data``, or :class:`EmptyResultError` when the key selects nothing."""
    if data.size == 0:
        raise EmptyResultError(
            f"{args.file}[{args.key}] selects no elements (result shape {data.shape} from "
            f"an image of shape {tuple(shape)}); nothing was written to {args.output}")
    return data


def sliced_header(header, nifti_key):
    """The source header for the slice: units, codes, intent and the zooms of
    non-spatial axes kept (a stepped time axis scales its zoom by the step).
    Shape, dtype, scaling and affine are then set from the slice itself.

    The stored pixdim values are carried over as they are (a negative pixdim, a
    NaN TR): a file that loads is a file that can be sliced; the new affine
    decides the spatial geometry."""
    header = header.copy()
    pixdim = [float(z) for z in header["pixdim"][1:]]
    kept = []
    for axis, item in enumerate(nifti_key):
        if isinstance(item, slice):
            zoom = pixdim[axis] if axis < len(pixdim) else 1.0
            if axis >= SPATIAL_AXES and item.step not in (None, 1):
                zoom *= abs(item.step)
            kept.append(zoom)
    header.set_data_shape(tuple(1 for _ in kept))  # placeholder; the image sets the shape
    header["pixdim"][1:len(kept) + 1] = kept
    return header


def sliced_affine(key, shape, affine):
    """The NIfTI-safe key (spatial integers kept as length-1 axes) and the new affine."""
    if not is_basic(key):
        raise ValueError("NIfTI output needs a basic key (integers, slices, ...); "
                         "save fancy selections as .npy")
    normalized = normalize_key(key, tuple(shape))
    if any(item is NEWAXIS for item in normalized.items):
        raise ValueError("NIfTI output cannot add axes (None/newaxis); use .npy")
    new_key, spatial = [], []
    for axis, item in enumerate(normalized.per_axis):
        if isinstance(item, AxisRange):
            end = item.start + item.count * item.step
            new_key.append(slice(item.start, None if end < 0 else end, item.step))
            voxels = range(item.start, end, item.step)
        else:
            new_key.append(slice(item, item + 1) if axis < SPATIAL_AXES else item)
            voxels = range(item, item + 1)
        if axis < SPATIAL_AXES:
            spatial.append(voxels)
    return tuple(new_key), slice_affine(affine, spatial)
