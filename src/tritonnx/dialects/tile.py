"""Builders for tile-level IR: `tile` ops plus upstream `arith`, `math` and `scf` on tensors.

Every value is a ranked tensor of a static block shape (or a scalar for program ids,
sizes and loop counters). Binary helpers broadcast their operands NumPy-style with
explicit `tile.expand_dims` / `tile.broadcast`, so each arith op sees equal shapes.

Index arithmetic (program ids, ranges, offsets, sizes of dynamic dimensions) is in the
builder's index type `idx`: i32, or i64 in a kernel some of whose tensors reach 2^31
elements (`TileBuilder(index_bits=64)`, chosen by lower-to-tile's `index_bits`).
"""
from __future__ import annotations

import math

import numpy as np
from mlir import ir
from mlir.dialects import scf

from tritonnx import symbolic
from tritonnx.dialects.builders import to_attr
from tritonnx.symbolic import SymInt

CMPI = {"eq": 0, "ne": 1, "lt": 2, "le": 3, "gt": 4, "ge": 5}
CMPF = {"eq": 1, "gt": 2, "ge": 3, "lt": 4, "le": 5, "ne": 13}  # ordered, but `ne` is une (NaN != NaN)
INT_OPS = {"add": "arith.addi", "sub": "arith.subi", "mul": "arith.muli", "div": "arith.divsi",
           "mod": "arith.remsi", "and": "arith.andi", "or": "arith.ori", "xor": "arith.xori",
           "shl": "arith.shli", "shr": "arith.shrsi",
           "max": "arith.maxsi", "min": "arith.minsi"}
FLOAT_OPS = {"add": "arith.addf", "sub": "arith.subf", "mul": "arith.mulf", "div": "arith.divf",
             "max": "arith.maximumf", "min": "arith.minimumf", "mod": "arith.remf"}


def shape(v: ir.Value) -> list[int]:
    t = v.type
    return list(ir.RankedTensorType(t).shape) if isinstance(t, ir.RankedTensorType) else []


def elem(v: ir.Value) -> ir.Type:
    t = v.type
    return ir.RankedTensorType(t).element_type if isinstance(t, ir.RankedTensorType) else t


def is_unsigned(t: ir.Type) -> bool:
    return isinstance(t, ir.IntegerType) and t.is_unsigned


def is_float(t: ir.Type) -> bool:
    return isinstance(t, (ir.F32Type, ir.F16Type, ir.BF16Type, ir.F64Type))


def _ttype(shp: list[int], et: ir.Type) -> ir.Type:
    return ir.RankedTensorType.get(list(shp), et) if shp else et


class TileBuilder:
    """Creates tile IR at the current insertion point. `index_bits` (32 or 64) is the width
    of index arithmetic: `idx`, the type of program ids, ranges, symbols and offsets."""

    def __init__(self, index_bits: int = 32):
        if index_bits not in (32, 64):
            raise ValueError(f"index_bits must be 32 or 64, not {index_bits}")
        self.index_bits = index_bits
        self.idx = ir.IntegerType.get_signless(index_bits)
        self.i32 = ir.IntegerType.get_signless(32)
        self.i1 = ir.IntegerType.get_signless(1)
        self.f32 = ir.F32Type.get()
        self.index = ir.IndexType.get()

    def op(self, name: str, operands: list[ir.Value], result: ir.Type | None, **attrs) -> ir.Value | None:
        o = ir.Operation.create(name, results=[result] if result is not None else [], operands=operands,
                                attributes={k: to_attr(v) for k, v in attrs.items()})
        return o.results[0] if result is not None else None

    # -- constants and indices -------------------------------------------------------
    def const(self, value, shp: list[int], et: ir.Type) -> ir.Value:
        if isinstance(value, SymInt):  # a size of a dynamic dimension: computed from tile.symbol
            v = symbolic.emit(self, value.expr, self.symbol)
            if isinstance(et, ir.IndexType):
                v = self.op("arith.index_cast", [v], et)
            elif et != self.idx:
                v = self.convert(v, et)
            return self.splat(v, shp) if shp else v
        if is_float(et):
            scalar = ir.FloatAttr.get(et, float(value))
        elif isinstance(et, ir.IndexType):
            scalar = ir.IntegerAttr.get(et, int(value))
        else:
            scalar = ir.IntegerAttr.get(et, int(value))
        attr = ir.DenseElementsAttr.get_splat(ir.RankedTensorType.get(shp, et), scalar) if shp else scalar
        return ir.Operation.create("arith.constant", results=[_ttype(shp, et)],
                                   attributes={"value": attr}).results[0]

    def symbol(self, name: str) -> ir.Value:
        """The run-time value of symbolic size `name` (a kernel argument)."""
        return self.op("tile.symbol", [], self.idx, symbol=name)

    def program_id(self, axis: int) -> ir.Value:
        return self.op("tile.program_id", [], self.idx, axis=axis)

    def arange(self, n: int) -> ir.Value:
        return self.op("tile.range", [], ir.RankedTensorType.get([n], self.idx), start=0, end=n)

    def splat(self, scalar: ir.Value, shp: list[int]) -> ir.Value:
        return self.op("tile.splat", [scalar], ir.RankedTensorType.get(shp, scalar.type))

    def expand(self, v: ir.Value, axis: int) -> ir.Value:
        s = shape(v)
        s.insert(axis, 1)
        return self.op("tile.expand_dims", [v], ir.RankedTensorType.get(s, elem(v)), axis=axis)

    def broadcast(self, v: ir.Value, shp: list[int]) -> ir.Value:
        if shape(v) == list(shp):
            return v
        if not shape(v):
            return self.splat(v, shp)
        return self.op("tile.broadcast", [v], ir.RankedTensorType.get(list(shp), elem(v)))

    # -- elementwise -------------------------------------------------------------------
    def _pair(self, a, b):
        if not isinstance(a, ir.Value):
            a, b = b, a
            swapped = True
        else:
            swapped = False
        if not isinstance(b, ir.Value):
            b = self.const(b, shape(a), elem(a))
        out = list(np.broadcast_shapes(tuple(shape(a)), tuple(shape(b))))
        a, b = self.broadcast(a, out), self.broadcast(b, out)
        return (b, a) if swapped else (a, b)

    def binary(self, kind: str, a, b) -> ir.Value:
        a, b = self._pair(a, b)
        et = elem(a)
        name = (FLOAT_OPS if is_float(et) else INT_OPS)[kind]
        return self.op(name, [a, b], a.type)

    def cmp(self, pred: str, a, b) -> ir.Value:
        a, b = self._pair(a, b)
        if is_float(elem(a)):
            return self.op("arith.cmpf", [a, b], _ttype(shape(a), self.i1), predicate=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), CMPF[pred]))
        return self.op("arith.cmpi", [a, b], _ttype(shape(a), self.i1), predicate=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), CMPI[pred]))

    def and_(self, *masks) -> ir.Value | None:
        out = None
        for m in masks:
            if m is not None:
                out = m if out is None else self.binary("and", out, m)
        return out

    def select(self, cond: ir.Value, a, b) -> ir.Value:
        if not isinstance(a, ir.Value):
            a = self.const(a, shape(cond), elem(b))
        if not isinstance(b, ir.Value):
            b = self.const(b, shape(cond), elem(a))
        out = list(np.broadcast_shapes(tuple(shape(cond)), tuple(shape(a)), tuple(shape(b))))
        cond, a, b = self.broadcast(cond, out), self.broadcast(a, out), self.broadcast(b, out)
        return self.op("arith.select", [cond, a, b], a.type)

    def unary(self, name: str, x: ir.Value) -> ir.Value:
        return self.op(name, [x], x.type)

    def full_like(self, x: ir.Value, value) -> ir.Value:
        return self.const(value, shape(x), elem(x))

    def convert(self, x: ir.Value, et: ir.Type) -> ir.Value:
        src = elem(x)
        if src == et:
            return x
        if is_unsigned(src) or is_unsigned(et):
            return self.op("tile.cast", [x], _ttype(shape(x), et))
        if is_float(src) and is_float(et):
            name = "arith.extf" if ir.FloatType(src).width < ir.FloatType(et).width else "arith.truncf"
        elif is_float(et):
            name = "arith.uitofp" if ir.IntegerType(src).width == 1 else "arith.sitofp"
        elif is_float(src):
            name = "arith.fptosi"
        else:
            name = "arith.extsi" if ir.IntegerType(src).width < ir.IntegerType(et).width else "arith.trunci"
        return self.op(name, [x], _ttype(shape(x), et))

    # -- memory and compute --------------------------------------------------------------
    def load(self, buffer: ir.Value, offsets: ir.Value, mask: ir.Value, other: float = 0.0) -> ir.Value:
        et = ir.RankedTensorType(buffer.type).element_type
        return self.op("tile.load", [buffer, offsets, mask], ir.RankedTensorType.get(shape(offsets), et),
                       other=float(other))

    def store(self, buffer: ir.Value, offsets: ir.Value, value: ir.Value, mask: ir.Value) -> None:
        self.op("tile.store", [buffer, offsets, value, mask], None)

    def dot(self, a: ir.Value, b: ir.Value, acc: ir.Value, precision: str = "ieee") -> ir.Value:
        """a @ b + acc; `precision` is Triton's input_precision for fp32 inputs (ieee, tf32)."""
        return self.op("tile.dot", [a, b, acc], acc.type, input_precision=precision)

    def reduce(self, x: ir.Value, axis: int, kind: str) -> ir.Value:
        s = shape(x)
        del s[axis]
        return self.op("tile.reduce", [x], ir.RankedTensorType.get(s, elem(x)), axis=axis, kind=kind)

    def scan(self, x: ir.Value, axis: int, kind: str) -> ir.Value:
        return self.op("tile.scan", [x], x.type, axis=axis, kind=kind)

    def for_range(self, start: int, stop: int, step: int, inits: list[ir.Value]) -> scf.ForOp:
        lb, ub, st = (self.const(v, [], self.index) for v in (start, stop, step))
        return scf.ForOp(lb, ub, st, inits)

    def loop_index(self, iv: ir.Value) -> ir.Value:
        """A loop's induction variable (`index`) as an index value (`idx`)."""
        return self.op("arith.index_cast", [iv], self.idx)


def delinearize(b: TileBuilder, linear: ir.Value, dims: list[int]) -> list[ir.Value | None]:
    """Per-dimension indices of a row-major `linear` index over `dims` (None where the
    dimension has size 1, i.e. the index is always 0)."""
    if 0 in dims:  # an empty tensor: nothing is read from it (its loads are masked off)
        return [None] * len(dims)
    out: list[ir.Value | None] = []
    stride = math.prod(dims)
    for i, d in enumerate(dims):
        stride //= d
        if d == 1:
            out.append(None)
            continue
        q = linear if stride == 1 else b.binary("div", linear, stride)
        outer = math.prod(dims[:i])
        out.append(q if outer == 1 else b.binary("mod", q, d))
    return out


def linearize(b: TileBuilder, idx: list[ir.Value | None], dims: list[int]) -> ir.Value | None:
    """The row-major offset of `idx` over `dims`; None when every index is 0."""
    if 0 in dims:  # an empty tensor: nothing is read from it (its loads are masked off)
        return None
    total = None
    stride = math.prod(dims)
    for i, d in zip(idx, dims):
        stride //= d
        if i is None or d == 1:
            continue
        term = i if stride == 1 else b.binary("mul", i, stride)
        total = term if total is None else b.binary("add", total, term)
    return total
