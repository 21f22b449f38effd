"""Example images installed with proxylib, so the README's examples run anywhere."""

from __future__ import annotations

import os

#: The folder inside the installed package that holds the examples.
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def example_path(name: str = "example4d.nii.gz") -> str:
    """The path of an example file shipped in the package (``proxylib/data``).

    ``example4d.nii.gz`` (the default) is a 32x32x12x10 int16 NIfTI-1 image
    with scale factors, an oblique affine and one header extension; see
    ``data/make_example.py`` in the source tree.
    """
    path = os.path.join(DATA_DIR, name)
    if not os.path.isfile(path):
        available = sorted(os.listdir(DATA_DIR)) if os.path.isdir(DATA_DIR) else []
        raise FileNotFoundError(f"{path}: no example {name!r} in the installed package; "
                                f"available: {available}")
    return path
