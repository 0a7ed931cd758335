"""Tensors between numpy, torch and the device the runtime runs on."""

from __future__ import annotations

import numpy as np


def to_torch(value):
    """A numpy array as a torch tensor (bfloat16, which numpy lacks, through its bits)."""
    import torch

    array = np.asarray(value)
    if not array.flags.writeable:  # torch wants writable memory; weights read from disk are not
        array = array.copy()
    if array.dtype.name == "bfloat16":
        bits = np.ascontiguousarray(array).view(np.uint16).reshape(array.shape)  # ascontiguousarray makes 0-d 1-d
        return torch.from_numpy(bits).view(torch.bfloat16)
    return torch.from_numpy(array)


def to_numpy(tensor) -> np.ndarray:
    """A torch tensor as a numpy array (bfloat16 as ml_dtypes.bfloat16)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
