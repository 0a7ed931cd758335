"""Builders for tile-level IR: `tile` ops plus upstream `arith`, `math` and `scf` on tensors.

Every value is a ranked tensor of a static block shape (or a scalar for program ids,
sizes and loop counters). Binary helpers broadcast their operands NumPy-style with
explicit `tile.expand_dims` / `tile.broadcast`, so each arith op sees equal shapes.

Block sizes are `Block`s: ints that remember the name of the kernel's `tl.constexpr`
parameter they are (BLOCK_M, ...). The builder records the names in the IR (`tile.range`'s
`block`, `tile.constexpr`, the `dims` of `tile.full`, `tile.splat` and `tile.broadcast`), so
the printer writes `tl.arange(0, BLOCK_M)` and `[BLOCK_M, BLOCK_N]`, and a kernel's source
holds for any block sizes: its autotune candidates are configs of one kernel. `name(v, n)`
gives a value the name it has in the printed kernel (a NameLoc: `%offs_m` in the dump,
`offs_m` in the source).

Index arithmetic (program ids, ranges, offsets, sizes of dynamic dimensions) is in the
builder's index type `idx`: i32, or i64 in a kernel some of whose tensors reach 2^31
elements (`TileBuilder(index_bits=64)`, chosen by lower-to-tile's `index_bits`).
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
from mlir import ir
from mlir.dialects import scf

from tritonnx import symbolic
from tritonnx.dialects.builders import to_attr
from tritonnx.symbolic import SymInt

CMPI = {"eq": 0, "ne": 1, "lt": 2, "le": 3, "gt": 4, "ge": 5}
CMPF = {"eq": 1, "gt": 2, "ge": 3, "lt": 4, "le": 5, "ne": 13}  # ordered, but `ne` is une (NaN != NaN)
INT_OPS = {
    "add": "arith.addi",
    "sub": "arith.subi",
    "mul": "arith.muli",
    "div": "arith.divsi",
    "mod": "arith.remsi",
    "and": "arith.andi",
    "or": "arith.ori",
    "xor": "arith.xori",
    "shl": "arith.shli",
    "shr": "arith.shrsi",
    "max": "arith.maxsi",
    "min": "arith.minsi",
}
FLOAT_OPS = {
    "add": "arith.addf",
    "sub": "arith.subf",
    "mul": "arith.mulf",
    "div": "arith.divf",
    "max": "arith.maximumf",
    "min": "arith.minimumf",
    "mod": "arith.remf",
}


class Block(int):
    """A block size: an int that remembers its constexpr parameter's name. Arithmetic on it
    gives plain ints (a derived size is not a parameter)."""

    name: str

    def __new__(cls, value: int, name: str):
        obj = int.__new__(cls, value)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"{self.name}={int(self)}"


def dim_text(d) -> str:
    """How a dimension is written in the IR's `dims` and in the source: a block's name or the size."""
    return d.name if isinstance(d, Block) else str(int(d))


def dims_attr(dims) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.StringAttr.get(dim_text(d)) for d in dims])


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


def splat_value(v: ir.Value, ops: tuple[str, ...] = ("arith.constant",)) -> ir.Attribute | None:
    """The element of a constant `v` made by one of `ops` (`arith.constant`, `tile.full`)
    that holds one value everywhere (a splat or a scalar), as an attribute; else None."""
    owner = v.owner
    if isinstance(owner, ir.Block) or owner.name not in ops:
        return None
    attr = owner.attributes["value"]
    if isinstance(attr, ir.DenseElementsAttr):
        return attr.get_splat_value() if attr.is_splat else None
    return attr


def _splat_int(v: ir.Value) -> int | None:
    """The value of an integer splat or scalar `arith.constant`, else None."""
    attr = splat_value(v)
    return ir.IntegerAttr(attr).value if isinstance(attr, ir.IntegerAttr) else None


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
        self.dims: dict = {}  # value -> its shape with Blocks where a dimension is a block size
        self.origins: dict = {}  # index -> (linear index, dims, position): made by `delinearize`

    def dims_of(self, v: ir.Value) -> list:
        """`v`'s shape, with a `Block` for each dimension known to be a block size."""
        named = self.dims.get(v)
        return list(named) if named is not None else shape(v)

    def _merge(self, *values) -> list:
        """The broadcast shape of `values` (NumPy rules), keeping block names."""
        out = list(np.broadcast_shapes(*(tuple(shape(v)) for v in values)))
        for v in values:
            for i, d in enumerate(self.dims_of(v)[::-1]):
                j = len(out) - 1 - i
                if isinstance(d, Block) and d == out[j] and not isinstance(out[j], Block):
                    out[j] = d
        return out

    def _record(self, v: ir.Value, dims) -> ir.Value:
        if any(isinstance(d, Block) for d in dims):
            self.dims[v] = list(dims)
        return v

    def name(self, v: ir.Value, name: str) -> ir.Value:
        """Names `v` (the printed kernel's variable, the dump's `%name`): its defining op's
        location becomes NameLoc(name, the old location). Returns `v`."""
        owner = v.owner
        if isinstance(owner, ir.Block):
            return v
        op = owner.operation if hasattr(owner, "operation") else owner
        op.location = ir.Location.name(name, childLoc=op.location)
        return v

    @overload
    def op(self, name: str, operands: list[ir.Value], result: None, **attrs) -> None: ...
    @overload
    def op(self, name: str, operands: list[ir.Value], result: ir.Type, **attrs) -> ir.Value: ...

    def op(self, name: str, operands: list[ir.Value], result: ir.Type | None, **attrs) -> ir.Value | None:
        """A generic op `name` at the insertion point; its one result, or None when `result`
        (its result type) is None."""
        o = ir.Operation.create(
            name,
            results=[result] if result is not None else [],
            operands=operands,
            attributes={k: to_attr(v) for k, v in attrs.items()},
        )
        return o.results[0] if result is not None else None

    # -- constants and indices -------------------------------------------------------
    def const(self, value, shp: list[int], et: ir.Type) -> ir.Value:
        """`value` over a tile of shape `shp` (a scalar for []). A shape with block sizes
        gives `tile.full` (a tile in its own right: an accumulator's start); otherwise an
        `arith.constant`, which the printer writes as a literal where Triton broadcasts it."""
        if isinstance(value, Block) and not shp:
            return self.constexpr(value, et)
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
        if any(isinstance(d, Block) for d in shp):
            full = self.op("tile.full", [], ir.RankedTensorType.get(list(shp), et), value=scalar)
            full.owner.attributes["dims"] = dims_attr(shp)
            return self._record(full, shp)
        attr = ir.DenseElementsAttr.get_splat(ir.RankedTensorType.get(shp, et), scalar) if shp else scalar
        return ir.Operation.create("arith.constant", results=[_ttype(shp, et)], attributes={"value": attr}).results[0]

    def symbol(self, name: str) -> ir.Value:
        """The run-time value of symbolic size `name` (a kernel argument)."""
        return self.op("tile.symbol", [], self.idx, symbol=name)

    def constexpr(self, block: Block, et: ir.Type | None = None) -> ir.Value:
        """The block size `block` as a scalar (of the index type unless `et`): the kernel's
        constexpr parameter."""
        out = self.op("tile.constexpr", [], et or self.idx, value=int(block))
        out.owner.attributes["name"] = ir.StringAttr.get(block.name)
        return out

    def program_id(self, axis: int) -> ir.Value:
        return self.op("tile.program_id", [], self.idx, axis=axis)

    def arange(self, n: int) -> ir.Value:
        extra = {"block": n.name} if isinstance(n, Block) else {}
        v = self.op("tile.range", [], ir.RankedTensorType.get([n], self.idx), start=0, end=int(n), **extra)
        return self._record(v, [n])

    def _shaped(self, name: str, v: ir.Value, shp: list) -> ir.Value:
        out = self.op(name, [v], ir.RankedTensorType.get([int(d) for d in shp], elem(v)))
        out.owner.attributes["dims"] = dims_attr(shp)
        return self._record(out, shp)

    def splat(self, scalar: ir.Value, shp: list[int]) -> ir.Value:
        return self._shaped("tile.splat", scalar, shp)

    def expand(self, v: ir.Value, axis: int) -> ir.Value:
        s = shape(v)
        s.insert(axis, 1)
        named = self.dims_of(v)
        named.insert(axis, 1)
        return self._record(self.op("tile.expand_dims", [v], ir.RankedTensorType.get(s, elem(v)), axis=axis), named)

    def broadcast(self, v: ir.Value, shp: list[int]) -> ir.Value:
        if shape(v) == list(shp):
            return v
        value = splat_value(v) if shape(v) else None
        if isinstance(value, (ir.IntegerAttr, ir.FloatAttr)):  # a constant stays one: it folds
            return self.const(value.value, [int(d) for d in shp], elem(v))
        if not shape(v):
            return self.splat(v, shp)
        own = self.dims_of(v)
        named = [
            d if isinstance(d, Block) or own[i] != d or not isinstance(own[i], Block) else own[i]
            for i, d in enumerate(shp)
        ]
        return self._shaped("tile.broadcast", v, named)

    # -- elementwise -------------------------------------------------------------------
    def _pair(self, a, b):
        if not isinstance(a, ir.Value):
            a, b = b, a
            swapped = True
        else:
            swapped = False
        if isinstance(b, Block):  # a block size: the constexpr, over a's shape
            b = self.constexpr(b, elem(a))
            if shape(a):
                b = self.splat(b, self.dims_of(a))
        elif isinstance(b, SymInt):  # a dynamic size: tile.symbol splat over a's (named) shape
            b = self.const(b, self.dims_of(a), elem(a))
        elif not isinstance(b, ir.Value):
            b = self.const(b, shape(a), elem(a))
        out = self._merge(a, b)
        a, b = self.broadcast(a, out), self.broadcast(b, out)
        return (b, a) if swapped else (a, b)

    def binary(self, kind: str, a, b) -> ir.Value:
        a, b = self._pair(a, b)
        et = elem(a)
        if not is_float(et):  # index math: identities and constants folded as it is built
            folded = self._fold(kind, a, b)
            if folded is not None:
                return folded
        name = (FLOAT_OPS if is_float(et) else INT_OPS)[kind]
        return self._record(self.op(name, [a, b], a.type), self._merge(a, b))

    def _fold(self, kind: str, a: ir.Value, b: ir.Value) -> ir.Value | None:
        """`a kind b` on integers without an op where it is exact: x + 0, x - 0, x * 1, x // 1
        are x, x * 0 is 0, and constants combine (+, -, *), so the printed index math has no
        `oh * 1 - 0 + kh` (a float x + 0.0 is not x for x = -0.0: floats are left alone)."""
        ca, cb = _splat_int(a), _splat_int(b)
        out = self._merge(a, b)
        if ca is not None and cb is not None and kind in ("add", "sub", "mul"):
            value = {"add": ca + cb, "sub": ca - cb, "mul": ca * cb}[kind]
            width = ir.IntegerType(elem(a)).width
            if -(2 ** (width - 1)) <= value < 2 ** (width - 1):
                return self.const(value, [int(d) for d in out], elem(a))
            return None
        if (kind in ("add", "sub") and cb == 0) or (kind in ("mul", "div") and cb == 1):
            return self.broadcast(a, out)
        if (kind == "add" and ca == 0) or (kind == "mul" and ca == 1):
            return self.broadcast(b, out)
        return None

    def cmp(self, pred: str, a, b) -> ir.Value:
        a, b = self._pair(a, b)
        if is_float(elem(a)):
            out = self.op(
                "arith.cmpf",
                [a, b],
                _ttype(shape(a), self.i1),
                predicate=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), CMPF[pred]),
            )
        else:
            out = self.op(
                "arith.cmpi",
                [a, b],
                _ttype(shape(a), self.i1),
                predicate=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), CMPI[pred]),
            )
        return self._record(out, self._merge(a, b))

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
        out = self._merge(cond, a, b)
        cond, a, b = self.broadcast(cond, out), self.broadcast(a, out), self.broadcast(b, out)
        return self._record(self.op("arith.select", [cond, a, b], a.type), out)

    def unary(self, name: str, x: ir.Value) -> ir.Value:
        return self._record(self.op(name, [x], x.type), self.dims_of(x))

    def unary_to(self, name: str, x: ir.Value, et: ir.Type) -> ir.Value:
        """A one-operand op `name` whose result has `x`'s shape and element type `et`
        (`arith.bitcast`)."""
        return self._record(self.op(name, [x], _ttype(shape(x), et)), self.dims_of(x))

    def full_like(self, x: ir.Value, value) -> ir.Value:
        """`value` in `x`'s shape and type: a literal where Triton broadcasts it."""
        return self.const(value, shape(x), elem(x))

    def zeros_like(self, x: ir.Value, value=0) -> ir.Value:
        """A tile of `x`'s shape (block names kept) filled with `value`: a tile in its own right."""
        return self.const(value, self.dims_of(x), elem(x))

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
        return self._record(self.op(name, [x], _ttype(shape(x), et)), self.dims_of(x))

    # -- memory and compute --------------------------------------------------------------
    def load(self, buffer: ir.Value, offsets: ir.Value, mask: ir.Value, other: float = 0.0) -> ir.Value:
        et = ir.RankedTensorType(buffer.type).element_type
        return self._record(
            self.op(
                "tile.load", [buffer, offsets, mask], ir.RankedTensorType.get(shape(offsets), et), other=float(other)
            ),
            self.dims_of(offsets),
        )

    def store(self, buffer: ir.Value, offsets: ir.Value, value: ir.Value, mask: ir.Value) -> None:
        self.op("tile.store", [buffer, offsets, value, mask], None)

    def dot(self, a: ir.Value, b: ir.Value, acc: ir.Value, precision: str = "ieee") -> ir.Value:
        """a @ b + acc; `precision` is Triton's input_precision for fp32 inputs (ieee, tf32)."""
        return self._record(
            self.op("tile.dot", [a, b, acc], acc.type, input_precision=precision),
            [self.dims_of(a)[0], self.dims_of(b)[1]],
        )

    def reduce(self, x: ir.Value, axis: int, kind: str) -> ir.Value:
        s = shape(x)
        del s[axis]
        named = self.dims_of(x)
        del named[axis]
        return self._record(
            self.op("tile.reduce", [x], ir.RankedTensorType.get(s, elem(x)), axis=axis, kind=kind), named
        )

    def scan(self, x: ir.Value, axis: int, kind: str) -> ir.Value:
        return self._record(self.op("tile.scan", [x], x.type, axis=axis, kind=kind), self.dims_of(x))

    def for_range(self, start: int, stop: int, step: int, inits: list[ir.Value]) -> scf.ForOp:
        """scf.for over [start, stop) by `step` (a Block: the constexpr) carrying `inits`;
        its region arguments and results keep the inits' block names."""
        lb, ub, st = (self.const(v, [], self.index) for v in (start, stop, step))
        loop = scf.ForOp(lb, ub, st, inits)
        for init, arg, res in zip(inits, loop.inner_iter_args, loop.results):
            self._record(arg, self.dims_of(init))
            self._record(res, self.dims_of(init))
        return loop

    def loop_index(self, iv: ir.Value) -> ir.Value:
        """A loop's induction variable (`index`) as an index value (`idx`)."""
        return self.op("arith.index_cast", [iv], self.idx)


def delinearize(b: TileBuilder, linear: ir.Value, dims: list[int]) -> list[ir.Value | None]:
    """Per-dimension indices of a row-major `linear` index over `dims` (None where the
    dimension has size 1, i.e. the index is always 0). The builder remembers where each
    came from, so `linearize` of them over the same dimensions gives `linear` back."""
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
        b.origins.setdefault(out[-1], (linear, tuple(dims), i))
    return out


def _run(b: TileBuilder, idx: list, dims: list[int], i: int) -> tuple[ir.Value, int] | None:
    """(linear, n) when idx[i:i+n] are the indices `delinearize` made of `linear` over
    exactly dims[i:i+n]: together they are `linear` (for every lane whose indices are in
    range, i.e. every lane a mask lets through; the others are out of range either way)."""
    first = next((v for v in idx[i:] if v is not None), None)
    origin = b.origins.get(first) if first is not None else None
    if origin is None:
        return None
    linear, sub, _ = origin
    n = len(sub)
    if tuple(dims[i : i + n]) != sub:
        return None
    for j in range(n):
        v = idx[i + j]
        if sub[j] == 1:
            if v is not None:
                return None
        elif v is None or b.origins.get(v) != (linear, sub, j):
            return None
    return linear, n


def linearize(b: TileBuilder, idx: list[ir.Value | None], dims: list[int]) -> ir.Value | None:
    """The row-major offset of `idx` over `dims`; None when every index is 0. Indices that
    `delinearize` made over the same dimensions fold back into the index they came from
    (no `k // 9 * 9 + k // 3 % 3 * 3 + k % 3` for `k`)."""
    if 0 in dims:  # an empty tensor: nothing is read from it (its loads are masked off)
        return None
    total = None
    i = 0
    while i < len(dims):
        run = _run(b, idx, dims, i) if idx[i] is not None or dims[i] == 1 else None
        if run is not None and run[1] > 1:
            term, n = run
        else:
            term, n = idx[i], 1
            if dims[i] == 1:
                term = None
        stride = math.prod(dims[i + n :])
        i += n
        if term is None:
            continue
        term = term if stride == 1 else b.binary("mul", term, stride)
        total = term if total is None else b.binary("add", total, term)
    return total
