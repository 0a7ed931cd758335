"""onnx.reference, as tritonnx folds constants with it, with the fixes it needs.

GatherElements: onnx 1.23's reference implementation is wrong when the gathered axis has
more than 64 elements (its fallback for `np.choose`'s 64-choice limit reads one element
per row); BERT's token-type embedding gathers along 128 positions. Replaced by
`np.take_along_axis` (GatherElements-13: negative indices count from the end).

MaxPool, AveragePool, LpPool: onnx 1.23's shared pooling code pads 1-D and 3-D inputs not
at all and reads 2-D pads as (top, bottom, left, right) where the spec's order is (top,
left, bottom, right); replaced by one windowed reduction over explicitly padded input.

GlobalMaxPool: onnx 1.23 reduces axes (rank - 2, rank - 1), right only for 4-D input;
replaced by a max over every spatial axis.

Softsign: onnx 1.23 writes into `np.abs(X) + 1`, which for a 0-d X is a NumPy scalar
and cannot be written into; replaced by X / (1 + |X|).

LpNormalization: onnx 1.23 sums x**p, not |x|**p, so p=1 divides by the plain sum (signs
flip, fuzz seed 7834); replaced by x / (sum |x|**p)**(1/p) (LpNormalization-1; 0 where the
norm is 0).
"""

from __future__ import annotations

import itertools

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


def _windows(x, kernel_shape, strides, dilations, pads, ceil_mode, fill):
    """Every pooling window of `x` (N, C, *spatial) stacked on a leading axis, with a
    mask of where each window reads the input (True), an explicit pad (False) or lies
    past the end pads, which only ceil_mode reaches (None: masked out of both)."""
    n = len(kernel_shape)
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    pads = list(pads or [0] * (2 * n))
    begin, end = pads[:n], pads[n:]
    outs = []
    for i in range(n):
        span = x.shape[2 + i] + begin[i] + end[i] - ((kernel_shape[i] - 1) * dilations[i] + 1)
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= x.shape[2 + i] + begin[i]:
            o -= 1  # the last window must start inside the input or its begin pad
        outs.append(o)
    extra = [
        max(
            0,
            (outs[i] - 1) * strides[i]
            + (kernel_shape[i] - 1) * dilations[i]
            + 1
            - (x.shape[2 + i] + begin[i] + end[i]),
        )
        for i in range(n)
    ]
    widths = [(0, 0), (0, 0)] + [(begin[i], end[i] + extra[i]) for i in range(n)]
    padded = np.pad(x, widths, constant_values=fill)
    where = np.pad(np.full(x.shape[2:], 2, np.int8), [(b, e) for b, e in widths[2:]], constant_values=1)
    for i in range(n):  # cells past the explicit end pads: 0
        index = [slice(None)] * n
        index[i] = slice(x.shape[2 + i] + begin[i] + end[i], None)
        where[tuple(index)] = 0
    values, kinds = [], []
    for offset in itertools.product(*[range(k) for k in kernel_shape]):
        index = tuple(
            slice(offset[i] * dilations[i], offset[i] * dilations[i] + (outs[i] - 1) * strides[i] + 1, strides[i])
            for i in range(n)
        )
        values.append(padded[(slice(None), slice(None)) + index])
        kinds.append(where[index])
    return np.stack(values), np.stack(kinds)[:, None, None]


class MaxPool(OpRun):
    op_domain = ""

    def _run(
        self, x, auto_pad=None, ceil_mode=0, dilations=None, kernel_shape=None, pads=None, storage_order=0, strides=None
    ):
        if auto_pad not in (None, "NOTSET", "VALID") or len(self.output) > 1:
            raise NotImplementedError("MaxPool: auto_pad SAME_* or the Indices output")
        values, kinds = _windows(x.astype(np.float64), kernel_shape, strides, dilations, pads, ceil_mode, -np.inf)
        return (np.fmax.reduce(np.where(kinds == 2, values, -np.inf), axis=0).astype(x.dtype),)


class AveragePool(OpRun):
    op_domain = ""

    def _run(
        self,
        x,
        auto_pad=None,
        ceil_mode=0,
        count_include_pad=0,
        dilations=None,
        kernel_shape=None,
        pads=None,
        strides=None,
    ):
        if auto_pad not in (None, "NOTSET", "VALID"):
            raise NotImplementedError("AveragePool: auto_pad SAME_*")
        values, kinds = _windows(x.astype(np.float64), kernel_shape, strides, dilations, pads, ceil_mode, 0.0)
        count = np.sum(kinds >= (1 if count_include_pad else 2), axis=0)
        return ((values.sum(axis=0) / count).astype(x.dtype),)


class LpPool(OpRun):
    op_domain = ""

    def _run(self, x, auto_pad=None, ceil_mode=0, dilations=None, kernel_shape=None, p=2, pads=None, strides=None):
        if auto_pad not in (None, "NOTSET", "VALID"):
            raise NotImplementedError("LpPool: auto_pad SAME_*")
        values, _ = _windows(np.abs(x.astype(np.float64)), kernel_shape, strides, dilations, pads, ceil_mode, 0.0)
        return (np.power(np.power(values, p).sum(axis=0), 1.0 / p).astype(x.dtype),)


class GlobalMaxPool(OpRun):
    op_domain = ""

    def _run(self, x):
        return (np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True),)


class Softsign(OpRun):
    op_domain = ""

    def _run(self, x):
        return (np.asarray(x / (1 + np.abs(x))).astype(x.dtype),)


class LpNormalization(OpRun):
    op_domain = ""

    def _run(self, x, axis=-1, p=2):
        norm = np.power(np.power(np.abs(x.astype(np.float64)), p).sum(axis=axis, keepdims=True), 1.0 / p)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(norm == 0, 0.0, x / norm)
        return (out.astype(x.dtype),)


def evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    """A ReferenceEvaluator of `model` with tritonnx's fixes."""
    return ReferenceEvaluator(
        model, new_ops=[GatherElements, MaxPool, AveragePool, LpPool, GlobalMaxPool, Softsign, LpNormalization]
    )
