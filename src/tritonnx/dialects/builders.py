"""Thin builders and accessors for tnx and tile ops on top of `mlir.ir`.

Attributes map to Python values one way and back: int <-> i64 IntegerAttr, float <-> f32
FloatAttr, str <-> StringAttr, list[int] <-> DenseI64ArrayAttr, list[float] <->
DenseF32ArrayAttr. Constant tensors are `dense` (small) or `dense_resource` (weights)
attributes; `WeightStore` keeps the numpy arrays behind the resources alive and readable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import ml_dtypes
import numpy as np
from mlir import ir

from tritonnx import symbolic
from tritonnx.dialects import operand_specs
from tritonnx.dialects.ops import defaults

_NP_TO_MLIR = {
    np.dtype(np.float32): ir.F32Type.get,
    np.dtype(np.float16): ir.F16Type.get,
    np.dtype(np.float64): ir.F64Type.get,
    np.dtype(ml_dtypes.bfloat16): ir.BF16Type.get,
    np.dtype(np.int64): lambda: ir.IntegerType.get_signless(64),
    np.dtype(np.int32): lambda: ir.IntegerType.get_signless(32),
    np.dtype(np.int16): lambda: ir.IntegerType.get_signless(16),
    np.dtype(np.int8): lambda: ir.IntegerType.get_signless(8),
    np.dtype(np.uint8): lambda: ir.IntegerType.get_unsigned(8),
    np.dtype(np.uint16): lambda: ir.IntegerType.get_unsigned(16),
    np.dtype(np.uint32): lambda: ir.IntegerType.get_unsigned(32),
    np.dtype(np.uint64): lambda: ir.IntegerType.get_unsigned(64),
    np.dtype(np.bool_): lambda: ir.IntegerType.get_signless(1),
}
_MLIR_TO_NP = {
    "f32": np.float32,
    "f16": np.float16,
    "f64": np.float64,
    "bf16": ml_dtypes.bfloat16,
    "i64": np.int64,
    "i32": np.int32,
    "i16": np.int16,
    "i8": np.int8,
    "i1": np.bool_,
    "ui8": np.uint8,
    "ui16": np.uint16,
    "ui32": np.uint32,
    "ui64": np.uint64,
}
SMALL_CONSTANT = 16  # elements; integer constants up to this size (shapes, axes) and
# scalars print inline as `dense<...>`; everything else (weights) is a dense_resource blob


def element_type(dtype: np.dtype) -> ir.Type:
    """The MLIR element type of a numpy dtype; raises KeyError for unsupported dtypes."""
    return _NP_TO_MLIR[np.dtype(dtype)]()


def np_dtype(element: ir.Type) -> np.dtype:
    """The numpy dtype of an MLIR element type (by type class: printing a type is slow)."""
    if isinstance(element, ir.IntegerType) and not element.is_signed:  # the bindings downcast types
        found = _INTEGER_TO_NP.get((element.width, element.is_unsigned))
        if found is not None:
            return found
    elif isinstance(element, ir.F32Type):
        return _F32
    return np.dtype(_MLIR_TO_NP[str(element)])


_INTEGER_TO_NP = {
    (w, u): np.dtype(_MLIR_TO_NP[f"{'ui' if u else 'i'}{w}"])
    for w, u in [
        (64, False),
        (32, False),
        (16, False),
        (8, False),
        (1, False),
        (8, True),
        (16, True),
        (32, True),
        (64, True),
    ]
}
_F32 = np.dtype(np.float32)


def tensor_type(shape: Sequence[int], dtype) -> ir.RankedTensorType:
    """A ranked tensor type of `shape` (ints and `symbolic.SymInt`s) and `dtype` (numpy
    dtype or MLIR element type). A symbolic size is `?`; the type's encoding lists the
    expressions of its `?` dimensions in order (`tensor<?x64xf32, ["batch"]>`)."""
    et = element_type(dtype) if not isinstance(dtype, ir.Type) else dtype
    dims = [ir.ShapedType.get_dynamic_size() if symbolic.is_symbolic(d) else int(d) for d in shape]
    exprs = [symbolic.text(symbolic.expr_of(d)) for d in shape if symbolic.is_symbolic(d)]
    if not exprs:
        return ir.RankedTensorType.get(dims, et)
    return ir.RankedTensorType.get(dims, et, ir.ArrayAttr.get([ir.StringAttr.get(e) for e in exprs]))


def like(t: ir.Type, shape: Sequence[int] | None = None, element: ir.Type | None = None) -> ir.RankedTensorType:
    """Tensor type `t` with another shape and/or element type."""
    rt = ir.RankedTensorType(t)
    return tensor_type(type_shape(rt) if shape is None else shape, element or rt.element_type)


def type_shape(t: ir.Type) -> list[int]:
    """The sizes of a ranked tensor type: ints, and `symbolic.SymInt`s for its `?`
    dimensions, read from the type's encoding. Raises CompileError for a `?` without one."""
    rt = ir.RankedTensorType(t)
    shape = list(rt.shape)
    dynamic = [i for i, d in enumerate(shape) if d == _DYNAMIC]
    if not dynamic:
        return shape
    cache = symbolic.type_cache()
    found = cache.get(rt) if cache is not None else None
    if found is not None:
        return list(found)
    enc = rt.encoding
    exprs = [ir.StringAttr(a).value for a in ir.ArrayAttr(enc)] if enc is not None else []
    if len(exprs) != len(dynamic):
        raise symbolic.SymbolicSizeError(
            f"tensor type {rt} has {len(dynamic)} dynamic dimension(s) but {len(exprs)} size expression(s)"
        )
    for i, e in zip(dynamic, exprs):
        shape[i] = symbolic.make(e)
    if cache is not None:
        cache[rt] = tuple(shape)
    return shape


_DYNAMIC = -(2**63)  # ShapedType.get_dynamic_size(): the size of a `?` dimension


def shape_of(value: ir.Value) -> list[int]:
    """The sizes of a tensor value: ints, and `symbolic.SymInt`s (ints carrying their
    expression) for its dynamic dimensions."""
    return type_shape(value.type)


def dtype_of(value: ir.Value) -> np.dtype:
    return np_dtype(ir.RankedTensorType(value.type).element_type)


def to_attr(value) -> ir.Attribute:
    """A Python attribute value as an MLIR attribute."""
    if isinstance(value, ir.Attribute):
        return value
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(value))
    if isinstance(value, (float, np.floating)):
        return ir.FloatAttr.get(ir.F32Type.get(), float(value))
    if isinstance(value, str):
        return ir.StringAttr.get(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, np.integer)) for v in value):
            return ir.DenseI64ArrayAttr.get([int(v) for v in value])
        if all(isinstance(v, (int, float, np.number)) for v in value):
            return ir.DenseF32ArrayAttr.get([float(v) for v in value])
        if all(isinstance(v, str) for v in value):
            return ir.ArrayAttr.get([ir.StringAttr.get(v) for v in value])
    raise TypeError(f"cannot express {value!r} as an MLIR attribute")


def from_attr(attr: ir.Attribute):
    """An MLIR attribute as a Python value (the inverse of `to_attr`)."""
    for cls, conv in (
        (ir.DenseI64ArrayAttr, list),
        (ir.DenseF32ArrayAttr, list),
        (ir.IntegerAttr, lambda a: a.value),
        (ir.FloatAttr, lambda a: a.value),
        (ir.StringAttr, lambda a: a.value),
        (ir.BoolAttr, lambda a: a.value),
    ):
        if isinstance(attr, cls):
            return conv(attr)
    if isinstance(attr, ir.ArrayAttr):
        return [from_attr(a) for a in attr]
    return attr


def attrs_of(op: ir.Operation) -> dict:
    """The op's attributes as Python values, without structural ones, the defaults the IR
    leaves out filled in (`tritonnx.dialects.ops.defaults`), by name."""
    op = op.operation
    present = {
        name: from_attr(op.attributes[name]) for name in op.attributes if name not in ("operandSegmentSizes", "value")
    }
    merged = {**defaults(op.name, present), **present}
    return {k: merged[k] for k in sorted(merged)}


def _is_default(op_name: str, key: str, value, default: dict) -> bool:
    if key not in default:
        return False
    try:
        return to_attr(value) == to_attr(default[key])
    except TypeError:
        return False


def _resource_name(attr: ir.Attribute) -> str:
    text = str(attr)
    return text[text.index("<") + 1 : text.index(">")]


class WeightStore:
    """The numpy arrays behind `dense_resource` attributes of one compilation.

    MLIR keeps only a pointer to the buffer, so the store owns every array for as long as
    the module lives. Names are unique per store.
    """

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.blobs: dict[str, bytes] = {}  # parsed from a dump, read on first use
        self.taken: set[str] = set()  # resource names of a parsed module, with or without data

    def adopt(self, text: str) -> None:
        """Takes in the resources of a module parsed from `text` (a dump): every
        `dense_resource` name it uses is taken, and the blobs its `{-# dialect_resources #-}`
        trailer kept become readable through `array` (a dump leaves out blobs larger than
        its limit: reading one raises KeyError)."""
        self.taken |= set(re.findall(r"dense_resource<([\w.$-]+)>", text))
        at = text.rfind("{-#")
        for name, hexdata in re.findall(r'^\s*([\w.$-]+): "0x([0-9A-Fa-f]*)"', text[at:] if at >= 0 else "", re.M):
            self.blobs[name] = bytes.fromhex(hexdata)[4:]  # after the 4-byte alignment

    def attr(self, array: np.ndarray, hint: str = "w") -> ir.Attribute:
        """A constant attribute for `array`: dense for scalars and small integer tensors,
        else a named dense_resource (elided from dumps)."""
        array = np.asarray(array, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        ttype = tensor_type(array.shape, array.dtype)
        if array.size == 1:  # a splat keeps 0-d shapes (DenseElementsAttr.get makes them 1-d)
            value = array.reshape(()).item()
            et = ttype.element_type
            scalar = (
                ir.FloatAttr.get(et, float(value))
                if isinstance(et, ir.FloatType)
                else ir.IntegerAttr.get(et, int(value))
            )
            return ir.DenseElementsAttr.get_splat(ttype, scalar)
        if array.size <= SMALL_CONSTANT and array.dtype.kind in "iub":
            literal = str(array.tolist()).replace("True", "true").replace("False", "false")
            return ir.Attribute.parse(f"dense<{literal}> : {ttype}")
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in hint).strip("_") or "w"
        name, i = base, 0
        while name in self.arrays or name in self.taken:  # the first free name: the same in tritonnx-opt
            name, i = f"{base}_{i}", i + 1
        raw = array.view(np.uint16) if array.dtype.name == "bfloat16" else array  # buffers know no bfloat16
        attr = ir.DenseResourceElementsAttr.get_from_buffer(memoryview(raw), name, ttype)  # type: ignore[arg-type]  # an ndarray is a Buffer; numpy declares it for Python >= 3.12 only
        # MLIR renames a blob whose name is taken in this context: key by the final name
        self.arrays[_resource_name(attr)] = array
        return attr

    def array(self, attr: ir.Attribute) -> np.ndarray:
        """The numpy value of a dense or dense_resource attribute."""
        if isinstance(attr, ir.DenseElementsAttr):
            dense = attr
            ttype = dense.type
            dtype = np_dtype(ttype.element_type)
            if dense.is_splat:
                return np.full(ttype.shape, from_attr(dense.get_splat_value()), dtype=dtype)
            if dtype == np.bool_:
                return np.array([bool(x) for x in attr]).reshape(ttype.shape)
            return np.array(dense).astype(dtype).reshape(ttype.shape)
        name = _resource_name(attr)
        if name not in self.arrays and name in self.blobs:
            ttype = ir.RankedTensorType(attr.type)
            dtype = np_dtype(ttype.element_type)
            raw = np.uint16 if dtype.name == "bfloat16" else dtype
            self.arrays[name] = np.frombuffer(self.blobs.pop(name), raw).view(dtype).reshape(ttype.shape).copy()
        if name not in self.arrays:
            raise KeyError(
                f"dense_resource<{name}> has no data in this compilation"
                + (" (the dump elided it)" if name in self.taken else "")
            )
        return self.arrays[name]


def create(
    name: str,
    operands: Sequence[ir.Value | None],
    result_types: Sequence[ir.Type],
    attrs: dict | None = None,
    regions: int = 0,
) -> ir.Operation:
    """Creates op `name` at the current insertion point. `operands` follow the op's IRDL
    operand list; None stands for an absent optional operand. Attributes of a tnx op that
    equal their default (`tritonnx.dialects.ops.defaults`) are left out."""
    specs = operand_specs().get(name)
    attrs = attrs or {}
    default = (
        defaults(name, {k: from_attr(v) if isinstance(v, ir.Attribute) else v for k, v in attrs.items()})
        if name.startswith("tnx.")
        else {}
    )
    attributes = {k: to_attr(v) for k, v in attrs.items() if not _is_default(name, k, v, default)}
    present = [v for v in operands if v is not None]
    if specs and any(opt for _, opt in specs):
        sizes = [0 if v is None else 1 for v in operands] + [0] * (len(specs) - len(operands))
        attributes["operandSegmentSizes"] = ir.DenseI32ArrayAttr.get(sizes)
    return ir.Operation.create(
        name, results=list(result_types), operands=present, attributes=attributes, regions=regions
    )


def operand(op: ir.Operation, name: str) -> ir.Value | None:
    """The operand called `name` (per the IRDL definition), or None if absent."""
    op = op.operation
    specs = operand_specs()[op.name]
    names = [n for n, _ in specs]
    index = names.index(name)
    if "operandSegmentSizes" in op.attributes:
        sizes = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
        if not sizes[index]:
            return None
        index = sum(sizes[:index])
    return op.operands[index] if index < len(op.operands) else None


def producer(value: ir.Value) -> ir.Operation | None:
    """The op defining `value` (a generic Operation), or None for a block argument."""
    return value.owner.operation if isinstance(value, ir.OpResult) else None


def producer_op(value: ir.Value) -> ir.Operation:
    """The op defining `value`, for callers that know it is an op's result; raises
    ValueError for a block argument."""
    op = producer(value)
    if op is None:
        raise ValueError(f"expected a value defined by an op, got a block argument: {value}")
    return op


def make_sizes(values: np.ndarray, dtype=np.int64) -> ir.Value:
    """A `tnx.sizes` at the current insertion point: a small integer tensor whose elements
    (ints and SymInts, `values` of any shape) are sizes over the model's symbols."""
    values = np.asarray(values, dtype=object)
    exprs = [str(symbolic.expr_of(v)) for v in values.reshape(-1)]
    ttype = tensor_type(list(values.shape), dtype)
    return create("tnx.sizes", [], [ttype], {"exprs": ir.ArrayAttr.get([ir.StringAttr.get(e) for e in exprs])}).result


def size_values(value: ir.Value) -> np.ndarray | None:
    """The elements of a `tnx.sizes` result as an object array of ints and SymInts; None
    for any other value."""
    op = producer(value)
    if op is None or op.name != "tnx.sizes":
        return None
    exprs = [symbolic.make(ir.StringAttr(e).value) for e in ir.ArrayAttr(op.attributes["exprs"])]
    out = np.empty(len(exprs), dtype=object)
    out[:] = exprs
    return out.reshape([int(d) for d in shape_of(value)])
