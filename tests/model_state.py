"""A model's state read to the host, and the check that a call left it as it was."""

from __future__ import annotations

import numpy as np

import xnn


def host_state(model) -> dict[str, np.ndarray]:
    """Every parameter and buffer of ``model`` as a NumPy copy, by state_dict name."""
    return {k: xnn.to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_state(model, before: dict[str, np.ndarray]) -> None:
    """``model`` holds exactly ``before``: the same names, dtypes and values."""
    after = host_state(model)
    assert list(after) == list(before)
    for name, value in before.items():
        assert after[name].dtype == value.dtype, name
        np.testing.assert_array_equal(after[name], value, err_msg=f"{name} changed")
