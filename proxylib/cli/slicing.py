"""``proxylib slice FILE KEY -o OUT``: save a slice as .npy, .nii or .nii.gz."""

from __future__ import annotations

import numpy as np

from ..indexing.normalize import NEWAXIS, AxisRange, is_basic, normalize_key
from ..loading import load, save
from .keys import parse_key

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
    parser.set_defaults(run=run)


def run(args) -> int:
    image = load(args.file)
    key = parse_key(args.key)
    out = args.output
    if out.endswith(".npy"):
        np.save(out, np.asarray(image.dataobj[key]))
    elif out.endswith((".nii", ".nii.gz")):
        nifti_key, affine = sliced_affine(key, image.shape, np.asarray(image.affine))
        data = np.asarray(image.dataobj[nifti_key])
        save(type(image)(data, affine, header=sliced_header(image.header, nifti_key)), out)
    else:
        raise ValueError(f"{out}: output must end in .npy, .nii or .nii.gz")
    print(f"{args.file}[{args.key}] -> {out}")
    return 0


def sliced_header(header, nifti_key):
    """The source header for the slice: units, codes, intent and the zooms of
    non-spatial axes kept (a stepped time axis scales its zoom by the step).
    Shape, dtype, scaling and affine are then set from the slice itself."""
    header = header.copy()
    zooms = list(header.get_zooms())
    kept = []
    for axis, item in enumerate(nifti_key):
        if isinstance(item, slice):
            zoom = zooms[axis] if axis < len(zooms) else 1.0
            if axis >= SPATIAL_AXES and item.step not in (None, 1):
                zoom *= abs(item.step)
            kept.append(zoom)
    header.set_data_shape(tuple(1 for _ in kept))  # placeholder; the image sets the shape
    header.set_zooms(kept)
    return header


def sliced_affine(key, shape, affine):
    """The NIfTI-safe key (spatial integers kept as length-1 axes) and the new affine."""
    if not is_basic(key):
        raise ValueError("NIfTI output needs a basic key (integers, slices, ...); "
                         "save fancy selections as .npy")
    normalized = normalize_key(key, tuple(shape))
    if any(item is NEWAXIS for item in normalized.items):
        raise ValueError("NIfTI output cannot add axes (None/newaxis); use .npy")
    per_axis = normalized.per_axis
    new_key, scale, origin = [], np.ones(SPATIAL_AXES), np.zeros(SPATIAL_AXES)
    for axis, item in enumerate(per_axis):
        if isinstance(item, AxisRange):
            new_key.append(slice(item.start, None if item.start + item.count * item.step < 0
                                 else item.start + item.count * item.step, item.step))
            if axis < SPATIAL_AXES:
                scale[axis], origin[axis] = item.step, item.start
        elif axis < SPATIAL_AXES:
            new_key.append(slice(item, item + 1))
            origin[axis] = item
        else:
            new_key.append(item)
    transform = np.eye(4)
    count = min(SPATIAL_AXES, len(per_axis))
    transform[:count, :count] = np.diag(scale[:count])
    transform[:count, 3] = origin[:count]
    return tuple(new_key), affine @ transform
