"""CRAI's reference output and how ours is compared with it (tests/unit/inference/
test_crai_reference.py, tests/e2e/test_crai_infill.py): observed cells bit for bit, infilled
cells within the float32 bound of two evaluations of the same network (tests/tolerances.py)."""

from __future__ import annotations

import numpy as np
import xarray

from tolerances import network_atol

CRAI = ("data", "climate", "crai")


def conv_reductions(export_path) -> list[int]:
    """kernel height x width x input channels of every convolution of an export, read from its
    kernels (flax layout [kh, kw, C_in, C_out])."""
    with np.load(export_path) as arrays:
        return [
            int(np.prod(arrays[k].shape[:3]))
            for k in arrays.files
            if k.endswith("/kernel") and arrays[k].ndim == 4
        ]


def compare_with_reference(ours_path, given_path, reference_path, reductions) -> float:
    """Asserts the CRAI reference holds for the `tas` of `ours_path`; returns max |difference|."""
    with (
        xarray.open_dataset(ours_path) as ours,
        xarray.open_dataset(given_path) as given,
        xarray.open_dataset(reference_path) as reference,
    ):
        ours_tas, theirs = ours["tas"].values, reference["tas"].values
        observed = np.isfinite(given["tas"].values)
        assert ours_tas.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours_tas[observed], theirs[observed])  # bit for bit
        # PyTorch vs XLA, two float32 evaluations of one network: its reductions, at the scale
        # of the values it outputs (the reference's infilled cells)
        atol = network_atol(reductions, float(np.abs(theirs[~observed]).max()))
        difference = np.abs(ours_tas[~observed] - theirs[~observed])
        assert difference.max() <= atol, (difference.max(), atol)
        for name in ("time", "lat", "lon"):
            xarray.testing.assert_identical(ours[name], reference[name])
        assert ours["tas"].attrs.keys() == reference["tas"].attrs.keys()
        for key, value in reference["tas"].attrs.items():  # reference_period is an array
            np.testing.assert_array_equal(ours["tas"].attrs[key], value, err_msg=key)
        assert ours["tas"].encoding["_FillValue"] == reference["tas"].encoding["_FillValue"]
        return float(difference.max())
