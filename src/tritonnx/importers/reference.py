"""onnx.reference, as tritonnx folds constants with it, with the fixes it needs.

GatherElements: onnx 1.23's reference implementation is wrong when the gathered axis has
more than 64 elements (its fallback for `np.choose`'s 64-choice limit reads one element
per row); BERT's token-type embedding gathers along 128 positions. Replaced by
`np.take_along_axis` (GatherElements-13: negative indices count from the end).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun


class GatherElements(OpRun):
    op_domain = ""

    def _run(self, data, indices, axis=None):
        axis = 0 if axis is None else int(axis)
        idx = np.where(indices < 0, indices + data.shape[axis], indices)
        return (np.take_along_axis(data, idx, axis=axis),)


def evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    """A ReferenceEvaluator of `model` with tritonnx's fixes."""
    return ReferenceEvaluator(model, new_ops=[GatherElements])
