"""The image facade gains nothing: ``img.dataobj[mask]`` and ``img.dataobj.oindex`` work."""

import numpy as np
import pytest

import proxylib

nibabel = pytest.importorskip("nibabel")


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_roi_time_series_from_a_nifti_file(tmp_path, suffix):
    rng = np.random.default_rng(5)
    data = rng.integers(-300, 300, (9, 8, 7, 6)).astype(np.int16)
    image = nibabel.Nifti1Image(data, np.eye(4))
    image.header.set_slope_inter(0.5, -2.0)
    path = str(tmp_path / f"bold{suffix}")
    nibabel.save(image, path)
    expected = np.asarray(nibabel.load(path).dataobj)        # scaled by nibabel
    mask = rng.random((9, 8, 7)) > 0.8
    loaded = proxylib.load(path)
    roi = loaded.dataobj[mask]
    assert roi.shape == (mask.sum(), 6) and roi.dtype == loaded.dataobj.dtype
    np.testing.assert_allclose(roi, expected[mask], rtol=1e-6)
    np.testing.assert_allclose(loaded.dataobj[..., [5, 0, 5]], expected[..., [5, 0, 5]])
    np.testing.assert_allclose(loaded.dataobj.oindex[[8, 1], :, mask[0, 0], 2],
                               expected[[8, 1]][:, :, mask[0, 0]][..., 2])
