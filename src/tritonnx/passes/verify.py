"""tnx-verify: checks every tnx op against the ONNX spec's rules on its operand shapes,
dtypes and attributes (`tritonnx.dialects.verify`); raises InvalidModelError naming the node.

Runs first in the pipeline, right after import, so that no pass reads past a buffer of a
malformed model. The IR is left unchanged.
"""

from __future__ import annotations

import numpy as np
from mlir import ir

from tritonnx.dialects.builders import producer
from tritonnx.dialects.verify import verify_op
from tritonnx.passes import current_weights

NAME = "tnx-verify"


def _constant(value: ir.Value) -> np.ndarray | None:
    op = producer(value)
    if op is None or op.name != "tnx.constant":
        return None
    try:
        return current_weights().array(op.attributes["value"])
    except (KeyError, ValueError):  # a dense_resource whose blob this compilation does not hold
        return None


def _walk(op: ir.Operation) -> None:
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                inner = inner.operation
                if inner.name.startswith("tnx."):
                    verify_op(inner, _constant)
                _walk(inner)


def run(module: ir.Operation, pass_=None) -> None:
    _walk(module)
