"""autocast: the compute precision of the model, as a graph pass (`--precision`).

fp32 (default): nothing changes; every dot product runs in IEEE fp32.
tf32: dot products (Conv, Gemm, MatMul, attention) take tf32 inputs on tensor cores, fp32
    accumulation; tensors stay fp32.
fp16, bf16: every fp32 tensor of the graph is stored in the half type (weights included);
    the model's fp32 inputs are cast at entry and its outputs cast back at exit, so the
    compiled model keeps the model's dtypes. Inside kernels values are loaded into fp32,
    so Softmax, normalizations, reductions and elementwise math run in fp32, and dot
    products take half inputs with fp32 accumulation.
The module records the choice as `tnx.precision`; `choose-blocks` copies it to every kernel.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from mlir import ir
from onnx import TensorProto

from tritonnx.compiler.options import PRECISIONS
from tritonnx.dialects.builders import create, like, np_dtype, to_attr
from tritonnx.errors import CompileError
from tritonnx.passes import current_session, current_weights, functions, ops

NAME = "autocast"


def _half(precision: str) -> ir.Type:
    return ir.F16Type.get() if precision == "fp16" else ir.BF16Type.get()


def _is_f32(t: ir.Type) -> bool:
    return isinstance(t, ir.RankedTensorType) and isinstance(t.element_type, ir.F32Type)


def _retype(t: ir.Type, et: ir.Type) -> ir.Type:
    return like(t, element=et)


def run(module: ir.Operation, pass_=None) -> None:
    precision = current_session().options.precision
    if precision not in PRECISIONS:
        raise CompileError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}.")
    module.attributes["tnx.precision"] = to_attr(precision)
    if precision in ("fp32", "tf32"):
        return
    half = _half(precision)
    onnx_half = TensorProto.FLOAT16 if precision == "fp16" else TensorProto.BFLOAT16
    weights = current_weights()
    for fn in functions(module):
        if "sym_visibility" in fn.attributes:
            continue
        block = fn.regions[0].blocks[0]
        first = ops(block)[0]
        for arg in block.arguments:  # fp32 inputs: cast once at entry
            if _is_f32(arg.type) and len(list(arg.uses)):
                with ir.InsertionPoint(first), first.location:
                    cast = create("tnx.cast", [arg], [_retype(arg.type, half)], {"to": onnx_half, "saturate": 1})
                for use in list(arg.uses):
                    if use.owner.operation != cast.operation:
                        use.owner.operation.operands[use.operand_number] = cast.result
        for op in ops(block):
            if op.name == "tnx.constant" and _is_f32(op.results[0].type):
                array = weights.array(op.attributes["value"])
                limit = float(ml_dtypes.finfo(np_dtype(half)).max)  # saturate, as TensorRT does:
                array = np.clip(array, -limit, limit).astype(np_dtype(half))  # (1 - mask) * min stays finite
                op.attributes["value"] = weights.attr(array, "half")
                op.results[0].set_type(_retype(op.results[0].type, half))
            elif op.name.startswith("tnx."):
                for r in op.results:
                    if _is_f32(r.type):
                        r.set_type(_retype(r.type, half))
                if (
                    op.name == "tnx.cast"
                    and "to" in op.attributes
                    and ir.IntegerAttr(op.attributes["to"]).value == TensorProto.FLOAT
                ):
                    op.attributes["to"] = to_attr(onnx_half)
            elif op.name == "func.return":
                want = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value).results
                for i, (v, t) in enumerate(zip(op.operands, want)):
                    if _is_f32(t) and not _is_f32(v.type):
                        with ir.InsertionPoint(op), op.location:
                            back = create("tnx.cast", [v], [t], {"to": TensorProto.FLOAT, "saturate": 1})
                        op.operands[i] = back.result
