"""Index maps: the Emitter that lower-to-tile uses to compute any tensor of a kernel on a
tile of indices.

To compute a tensor at per-dimension index tiles, the Emitter follows view ops as index
maps (Reshape: linearize and delinearize; Transpose: permute; Concat: masked select between
loads; Slice, Pad, Expand, Tile, Gather, GatherElements, GatherND, Resize, GridSample, ...:
the functions in VIEW_MAPS), applies elementwise ops to its operands' tiles (`elementwise`),
and loads the kernel's input buffers. The scatters (ScatterElements, ScatterND: stencils,
so each starts a kernel) are in VIEW_MAPS too: an output element is data's, updated by a
loop over the updates that may hit it, in order (`SCATTER_METHOD`); TensorScatter is a
select between the cache and the update. An anchor's result tile is registered in `known`.
"""

from __future__ import annotations

import math

import numpy as np
from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects import onnx_op_type, operand_specs
from tritonnx.dialects.builders import attrs_of, operand, producer_op, shape_of, size_values
from tritonnx.dialects.tile import TileBuilder, delinearize, elem, is_float, linearize
from tritonnx.errors import CompileError
from tritonnx.passes import elementwise
from tritonnx.passes.kernel_info import node_name

Index = list  # per-dimension index tiles (ir.Value), or None where the index is always 0


class Emitter:
    """Computes tensors of a kernel on tiles of indices."""

    def __init__(self, b: TileBuilder, buffers: dict, tile_shape: list[int]):
        self.b, self.buffers, self.shape = b, buffers, tile_shape
        self.known: dict = {}  # value -> tile already computed at the kernel's output index
        self.loads: dict = {}  # (buffer value, index, mask, block) -> the tile loaded there

    def __call__(self, v: ir.Value, idx: Index, mask: ir.Value | None) -> ir.Value:
        b = self.b
        if v in self.known:
            return self.known[v]
        if v in self.buffers:
            key = (v, tuple(idx), mask, ir.InsertionPoint.current.block)
            if key in self.loads:  # the same elements, loaded in this block already (x * x)
                return self.loads[key]
            offs = linearize(b, idx, shape_of(v))
            offs = b.broadcast(offs, self.shape) if offs is not None else b.const(0, self.shape, b.idx)
            m = b.broadcast(mask, self.shape) if mask is not None else b.const(1, self.shape, b.i1)
            tile = b.load(self.buffers[v], offs, m)
            self.loads[key] = b.convert(tile, compute_type(elem(tile)))
            return self.loads[key]
            offs = linearize(b, idx, shape_of(v))
            offs = b.broadcast(offs, self.shape) if offs is not None else b.const(0, self.shape, b.idx)
            m = b.broadcast(mask, self.shape) if mask is not None else b.const(1, self.shape, b.i1)
            tile = b.convert(b.load(self.buffers[v], offs, m), compute_type(elem(b.load_result)) if False else None)
            return tile
        op = producer_op(v)  # a block argument is a kernel's buffer, loaded above
        name = op.name
        out_shape = shape_of(v)
        if name == "tnx.reshape":
            lin = linearize(b, idx, out_shape)
            src_dims = shape_of(op.operands[0])
            src = delinearize(b, lin, src_dims) if lin is not None else [None] * len(src_dims)
            return self(op.operands[0], src, mask)
        if name == "tnx.transpose":
            perm = attrs_of(op)["perm"]
            src = [None] * len(perm)
            for i, p in enumerate(perm):
                src[p] = idx[i]
            return self(op.operands[0], src, mask)
        if name == "tnx.concat":
            axis = attrs_of(op)["axis"]
            head, tail = op.operands
            n0 = shape_of(head)[axis]
            i = idx[axis] if idx[axis] is not None else b.const(0, [1] * len(self.shape), b.idx)
            in_head = b.cmp("lt", i, n0)
            in_tail = b.cmp("ge", i, n0)
            h = self(head, idx[:axis] + [i] + idx[axis + 1 :], b.and_(mask, in_head))
            t_idx = idx[:axis] + [b.binary("sub", i, n0)] + idx[axis + 1 :]
            t = self(tail, t_idx, b.and_(mask, in_tail))
            return b.select(b.broadcast(in_head, self.shape), h, t)
        if name in VIEW_MAPS:
            return VIEW_MAPS[name](self, op, idx, mask)
        if name == "tnx.trilu":
            return self.trilu(op, idx, mask)
        if name == "tnx.lrn":
            return self.lrn(op, idx, mask)
        if name in ("tnx.quantize_linear", "tnx.dequantize_linear"):
            return self.quantization(op, idx, mask)
        if name == "tnx.one_hot":
            return self.one_hot(op, idx, mask)
        if name == "tnx.range":  # Range-11: start + i * delta (a dynamic compile keeps it)
            start, delta = (self(operand(op, n), [], mask) for n in ("start", "delta"))
            i = idx[0] if idx[0] is not None else self.index(0)
            step = b.binary("mul", b.convert(i, elem(start)), delta)
            return b.binary("add", b.broadcast(step, self.shape), start)
        if name == "tnx.sizes":  # a scalar dynamic size, computed in the kernel (outline)
            sizes = size_values(op.results[0])
            assert sizes is not None  # a tnx.sizes has them
            value = sizes.reshape(-1)[0]
            return b.const(value, [1] * len(self.shape), compute_type(elem_type_of(v)))
        if name == "tnx.eye_like":
            i, j = (t if t is not None else self.index(0) for t in idx[-2:])
            et = compute_type(elem_type_of(op.results[0]))
            hit = b.broadcast(b.cmp("eq", b.binary("sub", j, i), attrs_of(op)["k"]), self.shape)
            return b.select(hit, b.const(1, self.shape, et), b.const(0, self.shape, et))
        operands: list[ir.Value | None] = []
        for x in [operand(op, n) for n, _ in operand_specs()[op.name]]:
            if x is None:
                operands.append(None)
                continue
            xs = shape_of(x)
            lead = len(out_shape) - len(xs)
            sub = [None if (d == 1 and out_shape[lead + j] != 1) else idx[lead + j] for j, d in enumerate(xs)]
            operands.append(self(x, sub, mask))
        return self.pointwise(op, operands)

    def index(self, value: int) -> ir.Value:
        """A constant index, shaped to broadcast against the kernel's tile."""
        return self.b.const(value, [1] * len(self.shape), self.b.idx)

    def trilu(self, op: ir.Operation, idx: Index, mask) -> ir.Value:
        b, a = self.b, attrs_of(op)
        x = self(op.operands[0], idx, mask)
        i = idx[-2] if idx[-2] is not None else self.index(0)
        j = idx[-1] if idx[-1] is not None else self.index(0)
        diff = b.binary("sub", j, i)
        keep = b.cmp("ge", diff, a["k"]) if a["upper"] else b.cmp("le", diff, a["k"])
        return b.select(b.broadcast(keep, self.shape), x, b.full_like(x, 0))

    def one_hot(self, op: ir.Operation, idx: Index, mask) -> ir.Value:
        """OneHot-11: values[1] where the index along `axis` equals indices[...], else values[0]."""
        b, a = self.b, attrs_of(op)
        axis, depth = a["axis"], a["depth"]
        indices, values = op.operands[0], op.operands[-1]
        i_dims = shape_of(indices)
        k = b.convert(
            self(indices, [None if n == 1 else i for i, n in zip(idx[:axis] + idx[axis + 1 :], i_dims)], mask), b.idx
        )
        k = b.select(b.cmp("lt", k, 0), b.binary("add", k, depth), k)
        j = idx[axis] if idx[axis] is not None else self.index(0)
        off, on = self(values, [self.index(0)], mask), self(values, [self.index(1)], mask)
        return b.select(b.broadcast(b.cmp("eq", k, j), self.shape), on, off)

    def quantization(self, op: ir.Operation, idx: Index, mask) -> ir.Value:
        """QuantizeLinear / DequantizeLinear-21: the scale and zero point are indexed per
        tensor, per `axis`, or per block of `block_size` along `axis`."""
        b, a = self.b, attrs_of(op)
        x = op.operands[0]
        rank = len(shape_of(x))
        axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]

        def param(v):
            if v is None:
                return None
            dims = shape_of(v)
            if math.prod(dims) == 1:
                sub = [None] * len(dims)
            elif len(dims) == 1:
                sub = [idx[axis]]
            else:
                bs = a.get("block_size", 0) or 1
                sub = [
                    None if n == 1 else (i if d != axis or bs == 1 or i is None else b.binary("div", i, bs))
                    for d, (i, n) in enumerate(zip(idx, dims))
                ]
            return b.convert(self(v, sub, mask), b.f32)

        names = [n for n, _ in operand_specs()[op.name]]
        scale, zero = param(operand(op, names[1])), param(operand(op, names[2]))
        v = b.convert(self(x, idx, mask), b.f32)
        if op.name == "tnx.dequantize_linear":
            return b.binary("mul", v if zero is None else b.binary("sub", v, zero), scale)
        q = elementwise.OPS["tnx.round"](b, [b.binary("div", v, scale)], {})
        if zero is not None:
            q = b.binary("add", q, zero)
        out = ir.RankedTensorType(op.results[0].type).element_type
        if not isinstance(out, ir.IntegerType):
            raise CompileError(f"node {node_name(op)} (QuantizeLinear): output type {out} is not supported yet.")
        lo, hi = (0, 2**out.width - 1) if out.is_unsigned else (-(2 ** (out.width - 1)), 2 ** (out.width - 1) - 1)
        return b.binary("min", b.binary("max", q, float(lo)), float(hi))

    def lrn(self, op: ir.Operation, idx: Index, mask) -> ir.Value:
        """LRN-13: x / (bias + alpha / size * sum of x^2 over `size` channels)^beta."""
        b, a = self.b, attrs_of(op)
        x = op.operands[0]
        channels = shape_of(x)[1]
        c = idx[1] if idx[1] is not None else self.index(0)
        total = None
        for k in range(a["size"]):
            ck = b.binary("add", c, k - (a["size"] - 1) // 2)
            inside = b.and_(b.cmp("ge", ck, 0), b.cmp("lt", ck, channels))
            v = self(x, idx[:1] + [ck] + idx[2:], b.and_(mask, inside))
            v = b.select(b.broadcast(inside, self.shape), v, b.full_like(v, 0.0))
            total = b.binary("mul", v, v) if total is None else b.binary("add", total, b.binary("mul", v, v))
        base = b.binary("add", b.binary("mul", total, a["alpha"] / a["size"]), a["bias"])
        scale = b.unary("math.exp", b.binary("mul", b.unary("math.log", base), a["beta"]))
        return b.binary("div", self(x, idx, mask), scale)

    def pointwise(self, op: ir.Operation, xs: list[ir.Value | None]) -> ir.Value:
        source = elem_type_of(op.operands[0]) if len(op.operands) else None
        out = elementwise.emit(self.b, op.name, xs, attrs_of(op), elem_type_of(op.results[0]), source)
        if out is None:
            raise CompileError(
                f"node {node_name(op)} ({onnx_op_type(op.name)}) cannot be generated inside a kernel yet."
            )
        return out


def _slice(em: Emitter, op, idx, mask):
    a = attrs_of(op)
    src = []
    for i, s, st, n in zip(idx, a["starts"], a["steps"], shape_of(op.operands[0])):
        if i is None:
            src.append(None if s == 0 or n == 1 else em.index(s))
        else:
            scaled = i if st == 1 else em.b.binary("mul", i, st)
            src.append(scaled if s == 0 else em.b.binary("add", scaled, s))
    return em(op.operands[0], src, mask)


def _expand(em: Emitter, op, idx, mask):
    in_shape, out_shape = shape_of(op.operands[0]), shape_of(op.results[0])
    lead = len(out_shape) - len(in_shape)
    return em(op.operands[0], [None if d == 1 else idx[lead + j] for j, d in enumerate(in_shape)], mask)


def _tile(em: Emitter, op, idx, mask):
    in_shape, out_shape = shape_of(op.operands[0]), shape_of(op.results[0])
    src = [
        None if i is None or d == 1 else (i if d == o else em.b.binary("mod", i, d))
        for i, d, o in zip(idx, in_shape, out_shape)
    ]
    return em(op.operands[0], src, mask)


def _pad(em: Emitter, op, idx, mask):
    b, a = em.b, attrs_of(op)
    in_shape = shape_of(op.operands[0])
    rank = len(in_shape)
    src, inside = [], []
    for d, (i, n) in enumerate(zip(idx, in_shape)):
        begin, end = a["pads"][d], a["pads"][rank + d]
        if begin == 0 and end == 0:
            src.append(i)
            continue
        j = b.binary("sub", i if i is not None else em.index(0), begin)
        mode = a["mode"]
        if mode == "constant":
            inside.append(b.and_(b.cmp("ge", j, 0), b.cmp("lt", j, n)))
        elif mode == "edge":
            j = b.binary("min", b.binary("max", j, 0), n - 1)
        elif mode == "reflect":
            j = b.select(b.cmp("lt", j, 0), b.binary("sub", 0, j), j)
            j = b.select(b.cmp("ge", j, n), b.binary("sub", 2 * (n - 1), j), j)
        elif mode == "wrap":
            j = b.binary("mod", b.binary("add", j, n * (1 + begin // max(n, 1))), n)
        else:
            raise CompileError(f"node {node_name(op)} (Pad): mode {mode!r} is not supported.")
        src.append(j if n > 1 else None)
    valid = b.and_(*inside)
    x = em(op.operands[0], src, b.and_(mask, valid))
    if valid is None:
        return x
    return b.select(b.broadcast(valid, em.shape), x, b.full_like(x, a["constant_value"]))


def _gather(em: Emitter, op, idx, mask):
    data, indices = op.operands
    axis = attrs_of(op)["axis"]
    d_shape, i_shape = shape_of(data), shape_of(indices)
    r = len(i_shape)
    k = em(indices, [None if n == 1 else i for i, n in zip(idx[axis : axis + r], i_shape)], mask)
    k, mask = checked_index(em, op, k, d_shape[axis], mask)
    return em(data, idx[:axis] + [k] + idx[axis + r :], mask)


def _gather_elements(em: Emitter, op, idx, mask):
    data, indices = op.operands
    axis = attrs_of(op)["axis"]
    k = em(indices, [None if n == 1 else i for i, n in zip(idx, shape_of(indices))], mask)
    k, mask = checked_index(em, op, k, shape_of(data)[axis], mask)
    return em(data, idx[:axis] + [k] + idx[axis + 1 :], mask)


def _gather_nd(em: Emitter, op, idx, mask):
    """GatherND-13: output index (batch, rest of the index tuple's position, data tail) reads
    data at (batch, the index tuple loaded from `indices`, data tail)."""
    data, indices = op.operands
    bd = attrs_of(op)["batch_dims"]
    d_shape, i_shape = shape_of(data), shape_of(indices)
    q, k = len(i_shape), i_shape[-1]
    pos = [None if n == 1 else i for i, n in zip(idx[: q - 1], i_shape)]
    src = list(idx[:bd])
    for j in range(k):
        kj = em(indices, pos + [em.index(j) if k > 1 else None], mask)
        kj, mask = checked_index(em, op, kj, d_shape[bd + j], mask, component=j)
        src.append(kj)
    return em(data, src + list(idx[q - 1 :]), mask)


REDUCTIONS = {"add": "add", "mul": "mul", "max": "max", "min": "min"}
# how a kernel with a scatter writes, for its source's header (`tnx.method`)
SCATTER_METHOD = (
    "scatter: each output element starts from data and applies the updates that hit it "
    "serially, in update order (no atomics, no second launch; deterministic)"
)
SCATTERS = ("tnx.scatter_elements", "tnx.scatter_nd")


def _combine(em: Emitter, reduction: str, acc: ir.Value, u: ir.Value, hit: ir.Value) -> ir.Value:
    """`acc` with update `u` applied where `hit`: replaced (reduction none) or combined."""
    b = em.b
    if reduction != "none":
        u = b.binary(REDUCTIONS[reduction], acc, u)
    return b.select(b.broadcast(hit, em.shape), u, acc)


def _serial_loop(em: Emitter, op, acc: ir.Value, n: int, body) -> ir.Value:
    """`acc` after `n` steps of `body(acc, i) -> acc`, i the step (an index tile that
    broadcasts against the kernel's tile), as an scf.for in update order."""
    b = em.b
    if not isinstance(n, int):
        kind = onnx_op_type(op.name)
        raise CompileError(f"node {node_name(op)} ({kind}): a dynamic number of updates ({n}) is not supported yet.")
    if n == 1:
        return body(acc, em.index(0))
    loop = b.for_range(0, n, 1, [acc])
    with ir.InsertionPoint(loop.body):
        i = b.splat(b.loop_index(loop.induction_variable), [1] * len(em.shape))
        scf.YieldOp([body(loop.inner_iter_args[0], i)])
    return loop.results[0]


def _scatter_elements(em: Emitter, op, idx, mask):
    """ScatterElements-18: output[i] starts as data[i]; then, for k = 0 .. K-1 in order (K the
    indices' length along `axis`), the update at i with axis coordinate k replaced by k
    applies where indices there equals i's axis coordinate. Serial over k per output element:
    no atomics, the same order as onnxruntime (last write wins for `none`)."""
    b, a = em.b, attrs_of(op)
    data, indices, updates = op.operands
    d_shape, i_shape = shape_of(data), shape_of(indices)
    axis = a["axis"] % len(d_shape)
    here = [i if i is not None else em.index(0) for i in idx]
    inside = b.and_(mask, *[b.cmp("lt", here[d], n) for d, n in enumerate(i_shape) if d != axis and n != d_shape[d]])
    sub = [None if n == 1 else i for i, n in zip(idx, i_shape)]

    def step(acc, kk):
        at = sub[:axis] + [kk] + sub[axis + 1 :]
        k, hit = checked_index(em, op, em(indices, at, inside), d_shape[axis], inside)
        hit = b.and_(hit, b.cmp("eq", k, here[axis]))
        return _combine(em, a["reduction"], acc, em(updates, at, hit), hit)

    return _serial_loop(em, op, em(data, idx, mask), i_shape[axis], step)


def _scatter_nd(em: Emitter, op, idx, mask):
    """ScatterND-18: output starts as data; then, for each index tuple u of `indices` in
    order, updates[u, tail] applies at data[indices[u], tail]. Serial over the tuples per
    output element: no atomics, onnxruntime's order (last write wins for `none`)."""
    b, a = em.b, attrs_of(op)
    data, indices, updates = op.operands
    d_shape, i_shape = shape_of(data), shape_of(indices)
    k, lead = i_shape[-1], i_shape[:-1]
    here = [i if i is not None else em.index(0) for i in idx]

    def step(acc, u):
        pos = delinearize(b, u, lead) if lead else []
        pos = [None if n == 1 else p for p, n in zip(pos, lead)]
        hit = None  # the lanes whose coordinates the tuple matches (each valid one includes `mask`)
        for j in range(k):
            kj = em(indices, pos + [em.index(j) if k > 1 else None], mask)
            kj, valid = checked_index(em, op, kj, d_shape[j], mask, component=j)
            hit = b.and_(hit, valid, b.cmp("eq", kj, here[j]))
        return _combine(em, a["reduction"], acc, em(updates, pos + list(idx[k:]), hit), hit)

    return _serial_loop(em, op, em(data, idx, mask), math.prod(lead), step)


def _tensor_scatter(em: Emitter, op, idx, mask):
    """TensorScatter-24: position p along `axis` of batch row n takes update[..., s, ...] with
    s = p - write_indices[n] (modulo the cache length when circular) where 0 <= s < the
    update's length, else past_cache. A write index outside the cache writes nothing there
    (linear; memory stays safe)."""
    b, a = em.b, attrs_of(op)
    cache, update = op.operands[:2]
    write = operand(op, "write_indices")
    c_shape, u_shape = shape_of(cache), shape_of(update)
    axis = a["axis"] % len(c_shape)
    length, n = c_shape[axis], u_shape[axis]
    p = idx[axis] if idx[axis] is not None else em.index(0)
    s = p
    if write is not None:
        s = b.binary("sub", p, b.convert(em(write, [idx[0]], mask), b.idx))
        if a["mode"] == "circular":
            s = b.binary("mod", b.binary("add", b.binary("mod", s, length), length), length)
    hit = b.and_(b.cmp("ge", s, 0), b.cmp("lt", s, n))
    at = list(idx)
    at[axis] = s if n > 1 else None
    old = em(cache, idx, b.and_(mask, b.binary("xor", hit, True)))
    new = em(update, at, b.and_(mask, hit))
    return b.select(b.broadcast(hit, em.shape), new, old)


def checked_index(em: Emitter, op, k: ir.Value, n: int, mask, component: int = 0) -> tuple[ir.Value, ir.Value | None]:
    """(the index tile `k` into an axis of size `n`, negatives wrapped, in the index type
    `b.idx`; the mask of the load it addresses) for the gathers and scatters.

    Indices from constants (no `tnx.index_check`, set by outline) were verified at compile
    time. Indices from data are checked in their own width, before narrowing: valid =
    (k + n >= 0) & (k < n); a lane that is not valid loads nothing (its mask is off) and
    addresses row 0, so no value of the data reaches outside the table. With "check", the
    kernel also stores, where mask & ~valid, 1 + `component` (the position in GatherND's and
    ScatterND's index tuple, 0 elsewhere) into word 0 of the op's check buffer (an
    int64[2] kernel argument, `buffers["checks"]`) and the index into word 1; the runtime
    zeroes the buffer before the run and raises IndexError when word 0 is set after it
    (`tritonnx.runtime.checks`). With "mask" (check_indices=False) the result for an
    out-of-range index is unspecified (zero today) but memory stays safe.

    Cost per gathered element: two compares, an and, a select; with "check" also an xor
    and two stores that are predicated off unless an index is bad (no memory traffic)."""
    b = em.b
    mode = ir.StringAttr(op.attributes["tnx.index_check"]).value if "tnx.index_check" in op.attributes else None
    if mode is None:
        k = b.convert(k, b.idx)
        return b.select(b.cmp("lt", k, 0), b.binary("add", k, n), k), mask
    wrapped = b.binary("add", k, n)  # k + n wraps only when k >= n: invalid either way
    valid = b.and_(b.cmp("ge", wrapped, 0), b.cmp("lt", k, n))
    buf = em.buffers.get("checks", {}).get(op.results[0]) if mode == "check" else None
    if buf is not None:
        bad = b.broadcast(b.and_(mask, b.binary("xor", valid, True)), em.shape)
        i64 = ir.RankedTensorType(buf.type).element_type
        b.store(buf, b.const(0, em.shape, b.idx), b.const(1 + component, em.shape, i64), bad)
        b.store(buf, b.const(1, em.shape, b.idx), b.broadcast(b.convert(k, i64), em.shape), bad)
    k = b.select(valid, b.select(b.cmp("lt", k, 0), wrapped, k), b.full_like(k, 0))
    return b.convert(k, b.idx), b.and_(mask, valid)


def _linear_axes(scales: list[float]) -> set[int]:
    """The axes onnxruntime's linear Resize blends even where their scale is 1 (inputs of
    rank 2 and 3 all; rank 4 H, W of NCHW, or of NHWC where N and C keep their size; rank 5
    D, H, W): a blended axis of scale 1 still weighs its next element by 0."""
    rank = len(scales)
    if rank <= 3:
        return set(range(rank))
    if rank == 4:
        return {2, 3} if scales[0] == scales[1] == 1 else {1, 2} if scales[0] == scales[3] == 1 else set()
    return {2, 3, 4} if rank == 5 and scales[0] == scales[1] == 1 else set()


def _f32(v) -> float:
    """`v` rounded to float32 (as a Python float)."""
    return float(np.float32(v))


def _div_f32(b: TileBuilder, num: ir.Value, den: float) -> ir.Value:
    """The float32 quotient num / den rounded as IEEE division rounds it, on every backend:
    divided in float64 and rounded to float32 (double rounding is harmless for a quotient of
    float32 values: 53 >= 2 * 24 + 2); Triton's float32 division on the GPU is approximate."""
    f64 = ir.F64Type.get()
    return b.convert(b.binary("div", b.convert(num, f64), _f32(den)), b.f32)


def _nearest_coord(b: TileBuilder, ctm: str, x: ir.Value, n_in: int, n_out: int, s: float, roi) -> ir.Value:
    """The float32 source coordinate of output index `x` (float32) as onnxruntime computes it
    for nearest Resize, operation by operation in float32: `s` is the float32 scale (the given
    one, or f32(n_out) / f32(n_in) when sizes are given) and the resized length is n_out."""
    s = _f32(s)
    if ctm == "asymmetric":
        return _div_f32(b, x, s)
    if ctm == "align_corners":
        return b.full_like(x, 0.0) if n_out == 1 else _div_f32(b, b.binary("mul", x, float(n_in - 1)), n_out - 1)
    if ctm == "pytorch_half_pixel" and n_out == 1:
        return b.full_like(x, 0.0)
    if ctm in ("half_pixel", "pytorch_half_pixel"):
        return b.binary("sub", _div_f32(b, b.binary("add", x, 0.5), s), 0.5)
    if ctm == "half_pixel_symmetric":  # offset in float32, the rest in float64, then rounded
        f = np.float32
        offset = float(f(f(n_in) / f(2)) * (f(1) - f(n_out) / (f(s) * f(n_in))))
        f64 = ir.F64Type.get()
        t = b.binary("div", b.binary("add", b.convert(x, f64), 0.5), s)
        return b.convert(b.binary("sub", b.binary("add", t, offset), 0.5), b.f32)
    start, end = roi  # tf_crop_and_resize
    if n_out == 1:
        return b.full_like(x, _f32(0.5 * _f32(_f32(start) + _f32(end)) * (n_in - 1)))
    t = b.binary("mul", b.binary("mul", x, _f32(_f32(end) - _f32(start))), float(n_in - 1))
    return b.binary("add", _div_f32(b, t, n_out - 1), _f32(_f32(start) * (n_in - 1)))


def _nearest_index(b: TileBuilder, nm: str, v: ir.Value) -> ir.Value:
    """The nearest_mode rounding of coordinate `v` (float32), as onnxruntime: floor and ceil
    exact; the round modes take a coordinate within 1e-6 of a half as the half (so a
    3.4999998 that stands for 3.5 rounds up with round_prefer_ceil, an 8.500001 down with
    round_prefer_floor), and round other values to the nearest integer. Negative results are
    clamped to 0 by the caller."""
    if nm == "ceil":
        return b.unary("math.ceil", v)
    fl = b.unary("math.floor", v)
    if nm == "floor":
        return fl
    d = b.binary("sub", b.binary("sub", v, fl), 0.5)  # exact: v - floor(v) and the half
    tie = b.cmp("le", b.unary("math.absf", d), 1e-6)
    up = b.cmp("gt", d, 0.0)
    if nm == "round_prefer_ceil":
        up = b.binary("or", up, tie)
    else:  # round_prefer_floor
        up = b.and_(up, b.binary("xor", tie, True))
    return b.select(up, b.binary("add", fl, 1.0), fl)


def _resize(em: Emitter, op, idx, mask):
    """Resize-19: each output index maps to a fractional input coordinate (per
    coordinate_transformation_mode); nearest rounds it, linear blends the two neighbours in
    every resized dimension."""
    b, a = em.b, attrs_of(op)
    in_shape, out_shape = shape_of(op.operands[0]), shape_of(op.results[0])
    rank = len(in_shape)
    mode, ctm = a["mode"], a["coordinate_transformation_mode"]
    coords, extra_masks = [], []
    identity = in_shape == out_shape and all(s == 1.0 for s in a["scales"])  # onnxruntime copies
    blended = _linear_axes(a["scales"]) if mode == "linear" and not identity else set()
    for d, (i, n_in, n_out, s) in enumerate(zip(idx, in_shape, out_shape, a["scales"])):
        if (
            mode == "nearest"
        ):  # as onnxruntime: a copy where no dimension changes, and an axis of f32 scale 1 (rank > 1)
            if in_shape == out_shape or (_f32(s) == 1.0 and rank > 1):
                coords.append(("same", i))
                continue
            xo = _nearest_coord(
                b,
                ctm,
                b.convert(i if i is not None else em.index(0), b.f32),
                n_in,
                n_out,
                s,
                (a["roi"][d], a["roi"][rank + d]),
            )
            if ctm == "tf_crop_and_resize":
                extra_masks.append(b.and_(b.cmp("ge", xo, 0.0), b.cmp("le", xo, float(n_in - 1))))
            coords.append(("scaled", xo))
            continue
        if n_in == n_out and s == 1.0 and ctm != "tf_crop_and_resize" and (d not in blended or n_in == 1):
            coords.append(("same", i))
            continue
        x = b.convert(i if i is not None else em.index(0), b.f32)
        length = n_in * s  # "length_resized" of the spec: fractional when scales are given
        if abs(length - n_out) <= 1e-5 * n_out:  # sizes given: the scale n_out / n_in in f32
            length = n_out
        if ctm == "asymmetric":
            xo = b.binary("div", x, s)
        elif ctm == "align_corners":
            xo = b.binary("mul", x, (n_in - 1) / (length - 1)) if length != 1 else b.full_like(x, 0.0)
        elif ctm == "pytorch_half_pixel":
            xo = b.binary("sub", b.binary("div", b.binary("add", x, 0.5), s), 0.5) if n_out > 1 else b.full_like(x, 0.0)
        elif ctm == "half_pixel_symmetric":
            adjustment = n_out / (s * n_in)
            offset = n_in / 2 * (1 - adjustment)
            xo = b.binary("add", b.binary("sub", b.binary("div", b.binary("add", x, 0.5), s), 0.5), offset)
        elif ctm == "tf_crop_and_resize":
            start, end = a["roi"][d], a["roi"][rank + d]
            if n_out > 1:
                xo = b.binary("add", b.binary("mul", x, (end - start) * (n_in - 1) / (length - 1)), start * (n_in - 1))
            else:
                xo = b.full_like(x, 0.5 * (start + end) * (n_in - 1))
            extra_masks.append(b.and_(b.cmp("ge", xo, 0.0), b.cmp("le", xo, float(n_in - 1))))
        else:  # half_pixel
            xo = b.binary("sub", b.binary("div", b.binary("add", x, 0.5), s), 0.5)
        coords.append(("scaled", xo))

    def clamp(v, n):
        return b.binary("min", b.binary("max", v, 0), n - 1)

    if mode == "nearest":
        src = []
        for (kind, v), n in zip(coords, in_shape):
            if kind == "same":
                src.append(v)
                continue
            r = _nearest_index(b, a["nearest_mode"], v)
            src.append(clamp(b.convert(r, b.idx), n) if n > 1 else None)
        value = em(op.operands[0], src, mask)
    elif mode == "cubic":  # Keys' cubic convolution: 4 taps per resized dimension
        A = a.get("cubic_coeff_a", -0.75)
        dims, taps = [], []
        for d, ((kind, v), n) in enumerate(zip(coords, in_shape)):
            if kind == "same":
                continue
            fl = b.unary("math.floor", v)
            t_ = b.binary("sub", v, fl)
            base = b.convert(fl, b.idx)
            ws = []
            for off in (-1, 0, 1, 2):
                s_ = b.unary("math.absf", b.binary("sub", t_, float(off)))  # distance to the tap
                near = b.binary(
                    "add",
                    b.binary("mul", b.binary("mul", b.binary("sub", b.binary("mul", s_, A + 2), A + 3), s_), s_),
                    1.0,
                )
                far = b.binary(
                    "sub",
                    b.binary(
                        "mul",
                        b.binary("add", b.binary("mul", b.binary("sub", b.binary("mul", s_, A), 5 * A), s_), 8 * A),
                        s_,
                    ),
                    4 * A,
                )
                w = b.select(b.cmp("le", s_, 1.0), near, far)
                pos = b.binary("add", base, off)
                if a.get("exclude_outside", 0):
                    w = b.select(b.and_(b.cmp("ge", pos, 0), b.cmp("lt", pos, n)), w, b.full_like(w, 0.0))
                ws.append((pos, w))
            if a.get("exclude_outside", 0):
                total = None
                for _, w in ws:
                    total = w if total is None else b.binary("add", total, w)
                ws = [(pos, b.binary("div", w, total)) for pos, w in ws]
            dims.append(d)
            taps.append(ws)
        value = None
        for combo in range(4 ** len(dims)):
            src, weight = [], None
            for d, (_kind, v) in enumerate(coords):
                if d not in dims:
                    src.append(v)
                    continue
                pos, w = taps[dims.index(d)][(combo // 4 ** dims.index(d)) % 4]
                src.append(clamp(pos, in_shape[d]) if in_shape[d] > 1 else None)
                weight = w if weight is None else b.binary("mul", weight, w)
            x = b.convert(em(op.operands[0], src, mask), b.f32)
            term = x if weight is None else b.binary("mul", x, weight)  # None: no axis is resized
            value = term if value is None else b.binary("add", value, term)
    else:  # linear: blend 2^k corners of the resized dimensions
        # as onnxruntime: the coordinate is clamped to [0, n - 1] first, so an edge output
        # blends x[0] with weight 1 and x[1] with weight 0 (inf * 0: NaN next to an infinite
        # x[1], as the spec's weighted sum gives), and where both corners are x[n - 1] each
        # weighs 0.5 (inf stays inf); an input dimension of 1 is read once
        los: list[ir.Value | None] = []
        his: list[ir.Value | None] = []
        weights: list[tuple[ir.Value, ir.Value] | None] = []  # (low, high) corner weights
        for (kind, v), n in zip(coords, in_shape):
            if kind == "same" or n == 1:
                los.append(None)
                his.append(None)
                weights.append(None)
                continue
            v = b.binary("min", b.binary("max", v, 0.0), float(n - 1))
            lo = b.unary("math.floor", v)
            hi = b.binary("min", b.binary("add", lo, 1.0), float(n - 1))
            edge = b.cmp("eq", lo, hi)
            half = b.full_like(v, 0.5)
            los.append(b.convert(lo, b.idx))
            his.append(b.convert(hi, b.idx))
            weights.append((b.select(edge, half, b.binary("sub", hi, v)), b.select(edge, half, b.binary("sub", v, lo))))
        value = None
        dims = [d for d, w in enumerate(weights) if w is not None]
        for corner in range(1 << len(dims)):
            src, weight = [], None
            for d, (kind, v) in enumerate(coords):
                pair = weights[d]
                if pair is None:
                    src.append(v if kind == "same" else None)
                    continue
                bit = (corner >> dims.index(d)) & 1
                src.append(his[d] if bit else los[d])
                w = pair[bit]
                weight = w if weight is None else b.binary("mul", weight, w)
            x = b.convert(em(op.operands[0], src, mask), b.f32)
            term = x if weight is None else b.binary("mul", x, weight)
            value = term if value is None else b.binary("add", value, term)
    inside = b.and_(*extra_masks)
    if inside is not None:
        value = b.select(
            b.broadcast(inside, em.shape), b.convert(value, b.f32), b.const(a["extrapolation_value"], em.shape, b.f32)
        )
    return value


def _grid_sample(em: Emitter, op, idx, mask):
    """GridSample-22: output (n, c, o...) samples X[n, c] at the grid's normalized coordinates
    (grid[n, o..., d] in [-1, 1], the last component first along the innermost axis)."""
    b, a = em.b, attrs_of(op)
    x, grid = op.operands
    x_dims = shape_of(x)
    spatial = len(x_dims) - 2
    mode, pad, align = a["mode"], a["padding_mode"], a["align_corners"]
    if mode not in ("linear", "bilinear", "nearest"):
        raise CompileError(f"node {node_name(op)} (GridSample): mode {mode!r} is not supported yet.")
    g_dims = shape_of(grid)
    coords = []
    for d in range(spatial):  # spatial dim d of X reads grid component spatial - 1 - d
        comp = spatial - 1 - d
        gi = [idx[0] if g_dims[0] > 1 else None] + [None if n == 1 else i for i, n in zip(idx[2:], g_dims[1:-1])]
        g = b.convert(em(grid, gi + [em.index(comp) if g_dims[-1] > 1 else None], mask), b.f32)
        n = x_dims[2 + d]
        c = (
            b.binary("mul", b.binary("add", g, 1.0), (n - 1) / 2.0)
            if align
            else b.binary("div", b.binary("sub", b.binary("mul", b.binary("add", g, 1.0), float(n)), 1.0), 2.0)
        )
        if pad == "border":
            c = b.binary("min", b.binary("max", c, 0.0), float(n - 1))
        elif pad == "reflection":
            lo, hi = (0.0, float(n - 1)) if align else (-0.5, n - 0.5)
            span = hi - lo
            if span <= 0:
                c = b.full_like(c, 0.0)
            else:  # fold the coordinate into [lo, hi] by reflecting at both ends
                off = b.unary("math.absf", b.binary("sub", c, lo))
                flips = b.unary("math.floor", b.binary("div", off, span))
                rem = b.binary("sub", off, b.binary("mul", flips, span))
                odd = b.cmp(
                    "ne",
                    b.binary("sub", flips, b.binary("mul", b.unary("math.floor", b.binary("mul", flips, 0.5)), 2.0)),
                    0.0,
                )
                c = b.select(odd, b.binary("sub", b.full_like(rem, hi), rem), b.binary("add", rem, lo))
                c = b.binary("min", b.binary("max", c, 0.0), float(n - 1))
        coords.append(c)

    def sample(points):
        """X at integer points (one per spatial dim), zero outside."""
        src, inside = [], []
        for p_, n in zip(points, x_dims[2:]):
            inside += [b.cmp("ge", p_, 0), b.cmp("lt", p_, n)]
            src.append(b.binary("min", b.binary("max", p_, 0), n - 1) if n > 1 else None)
        ok = b.and_(*inside)
        v = b.convert(em(x, idx[:2] + src, b.and_(mask, ok)), b.f32)
        return b.select(b.broadcast(ok, em.shape), v, b.full_like(v, 0.0))

    if mode == "nearest":
        return sample([b.convert(elementwise.OPS["tnx.round"](b, [c], {}), b.idx) for c in coords])
    lows = [b.unary("math.floor", c) for c in coords]
    fracs = [b.binary("sub", c, lo) for c, lo in zip(coords, lows)]
    lows = [b.convert(lo, b.idx) for lo in lows]
    value = None
    for corner in range(1 << spatial):
        bits = [(corner >> d) & 1 for d in range(spatial)]
        weight = None
        for bit, f in zip(bits, fracs):
            w = f if bit else b.binary("sub", b.full_like(f, 1.0), f)
            weight = w if weight is None else b.binary("mul", weight, w)
        term = b.binary("mul", sample([b.binary("add", lo, bit) for lo, bit in zip(lows, bits)]), weight)
        value = term if value is None else b.binary("add", value, term)
    return value


def _reverse_sequence(em: Emitter, op, idx, mask):
    """ReverseSequence-10: along time_axis, the first sequence_lens[b] steps reversed."""
    b, a = em.b, attrs_of(op)
    x, lens = op.operands
    bt, tt = a["batch_axis"], a["time_axis"]
    n = b.convert(em(lens, [idx[bt]], mask), b.idx)
    # a length outside [0, T] (from data) is clamped into it: memory stays safe, the result unspecified
    n = b.binary("min", b.binary("max", n, 0), shape_of(x)[tt])
    t = idx[tt] if idx[tt] is not None else em.index(0)
    src = idx[:]
    src[tt] = b.select(b.cmp("lt", t, n), b.binary("sub", b.binary("sub", n, 1), t), t)
    return em(x, src, mask)


VIEW_MAPS = {
    "tnx.grid_sample": _grid_sample,
    "tnx.reverse_sequence": _reverse_sequence,
    "tnx.resize": _resize,
    "tnx.slice": _slice,
    "tnx.expand": _expand,
    "tnx.tile": _tile,
    "tnx.pad": _pad,
    "tnx.gather": _gather,
    "tnx.gather_elements": _gather_elements,
    "tnx.gather_nd": _gather_nd,
    "tnx.scatter_elements": _scatter_elements,
    "tnx.scatter_nd": _scatter_nd,
    "tnx.tensor_scatter": _tensor_scatter,
}


def compute_type(t: ir.Type) -> ir.Type:
    """The type a kernel computes a value of type `t` in: f32 for the half types, signless
    i32 for 8- and 16-bit integers, i64 for unsigned 32- and 64-bit ones (arith is signless:
    unsigned values are widened so that they compare and divide correctly)."""
    if is_float(t):
        return ir.F32Type.get() if ir.FloatType(t).width < 32 else t
    if isinstance(t, ir.IntegerType) and t.width > 1 and (t.width < 32 or t.is_unsigned):
        return ir.IntegerType.get_signless(32 if t.width < 32 else 64)
    return t


def elem_type_of(v: ir.Value) -> ir.Type:
    return ir.RankedTensorType(v.type).element_type


def known_tile(b: TileBuilder, tile: ir.Value, value: ir.Value) -> ir.Value:
    """An anchor's result tile in the compute type of `value`."""
    return b.convert(tile, compute_type(elem_type_of(value)))
