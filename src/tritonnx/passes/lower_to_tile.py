"""lower-to-tile: rewrites each outlined kernel into tile IR, the body of one Triton program.

The kernel's anchor picks a template (implicit-GEMM conv, gemm, pool window reduction,
softmax row, or a flat pointwise loop). Everything else in the group is evaluated by
`Emitter`: to compute a tensor on a tile of indices it follows view ops as index maps
(Reshape: linearize/delinearize, Transpose: permute, Concat: masked select between loads),
applies pointwise ops to its operands' tiles, and loads kernel inputs. Kernels become
destination-passing: `@kernel_N(inputs..., output)`; in @main each call gets its output
from `bufferization.alloc_tensor` (an allocation, so cse keeps them apart).
"""
from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import func, scf

from tritonnx.dialects import onnx_op_type, operand_specs
from tritonnx.dialects.builders import attrs_of, operand, producer, shape_of
from tritonnx.dialects.tile import TileBuilder, delinearize, elem, is_float, linearize, shape
from tritonnx.errors import CompileError
from tritonnx.passes import elementwise, functions, ops
from tritonnx.passes.fuse import node_name
from tritonnx.passes.tile import anchor_of, gemm_dims

NAME = "lower-to-tile"
NEG_INF = float("-inf")
LOWEST_F32 = -3.4028234663852886e38  # masked softmax lanes: finite, so empty rows make no NaN

Index = list  # per-dimension index tiles (ir.Value), or None where the index is always 0


class Emitter:
    """Computes tensors of a kernel on tiles of indices."""

    def __init__(self, b: TileBuilder, buffers: dict, tile_shape: list[int]):
        self.b, self.buffers, self.shape = b, buffers, tile_shape
        self.known: dict = {}  # value -> tile already computed at the kernel's output index

    def __call__(self, v: ir.Value, idx: Index, mask: ir.Value | None) -> ir.Value:
        b = self.b
        if v in self.known:
            return self.known[v]
        if v in self.buffers:
            offs = linearize(b, idx, shape_of(v))
            offs = b.broadcast(offs, self.shape) if offs is not None else b.const(0, self.shape, b.i32)
            m = b.broadcast(mask, self.shape) if mask is not None else b.const(1, self.shape, b.i1)
            tile = b.load(self.buffers[v], offs, m)
            return b.convert(tile, compute_type(elem(tile)))
        op = producer(v)
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
            i = idx[axis] if idx[axis] is not None else b.const(0, [1] * len(self.shape), b.i32)
            in_head = b.cmp("lt", i, n0)
            in_tail = b.cmp("ge", i, n0)
            h = self(head, idx[:axis] + [i] + idx[axis + 1:], b.and_(mask, in_head))
            t_idx = idx[:axis] + [b.binary("sub", i, n0)] + idx[axis + 1:]
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
        if name == "tnx.eye_like":
            i, j = (t if t is not None else self.index(0) for t in idx[-2:])
            et = compute_type(elem_type_of(op.results[0]))
            hit = b.broadcast(b.cmp("eq", b.binary("sub", j, i), attrs_of(op)["k"]), self.shape)
            return b.select(hit, b.const(1, self.shape, et), b.const(0, self.shape, et))
        operands = []
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
        return self.b.const(value, [1] * len(self.shape), self.b.i32)

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
        k = b.convert(self(indices, [None if n == 1 else i for i, n in zip(idx[:axis] + idx[axis + 1:], i_dims)], mask), b.i32)
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
                sub = [None if n == 1 else (i if d != axis or bs == 1 or i is None else b.binary("div", i, bs))
                       for d, (i, n) in enumerate(zip(idx, dims))]
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
        lo, hi = (0, 2 ** out.width - 1) if out.is_unsigned else (-(2 ** (out.width - 1)), 2 ** (out.width - 1) - 1)
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
        out = elementwise.emit(self.b, op.name, xs, attrs_of(op), elem_type_of(op.results[0]))
        if out is None:
            raise CompileError(f"node {node_name(op)} ({onnx_op_type(op.name)}) cannot be generated inside a kernel yet.")
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
    src = [None if i is None or d == 1 else (i if d == o else em.b.binary("mod", i, d))
           for i, d, o in zip(idx, in_shape, out_shape)]
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
    b = em.b
    data, indices = op.operands
    axis = attrs_of(op)["axis"]
    d_shape, i_shape = shape_of(data), shape_of(indices)
    r = len(i_shape)
    k = em(indices, [None if n == 1 else i for i, n in zip(idx[axis:axis + r], i_shape)], mask)
    k = b.convert(k, b.i32)
    k = b.select(b.cmp("lt", k, 0), b.binary("add", k, d_shape[axis]), k)
    return em(data, idx[:axis] + [k] + idx[axis + r:], mask)


def _gather_elements(em: Emitter, op, idx, mask):
    b = em.b
    data, indices = op.operands
    axis = attrs_of(op)["axis"]
    k = b.convert(em(indices, [None if n == 1 else i for i, n in zip(idx, shape_of(indices))], mask), b.i32)
    k = b.select(b.cmp("lt", k, 0), b.binary("add", k, shape_of(data)[axis]), k)
    return em(data, idx[:axis] + [k] + idx[axis + 1:], mask)


def _resize(em: Emitter, op, idx, mask):
    """Resize-19: each output index maps to a fractional input coordinate (per
    coordinate_transformation_mode); nearest rounds it, linear blends the two neighbours in
    every resized dimension."""
    b, a = em.b, attrs_of(op)
    in_shape, out_shape = shape_of(op.operands[0]), shape_of(op.results[0])
    rank = len(in_shape)
    mode, ctm = a["mode"], a["coordinate_transformation_mode"]
    coords, extra_masks = [], []
    for d, (i, n_in, n_out, s) in enumerate(zip(idx, in_shape, out_shape, a["scales"])):
        if n_in == n_out and s == 1.0 and ctm != "tf_crop_and_resize":
            coords.append(("same", i))
            continue
        x = b.convert(i if i is not None else em.index(0), b.f32)
        length = n_in * s  # "length_resized" of the spec: fractional when scales are given
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
            nm = a["nearest_mode"]
            fl = b.unary("math.floor", v)
            if nm == "floor":
                r = fl
            elif nm == "ceil":
                r = b.unary("math.ceil", v)
            elif nm == "round_prefer_ceil":
                r = b.unary("math.floor", b.binary("add", v, 0.5))
            else:  # round_prefer_floor
                r = b.unary("math.ceil", b.binary("sub", v, 0.5))
            src.append(clamp(b.convert(r, b.i32), n) if n > 1 else None)
        value = em(op.operands[0], src, mask)
    elif mode == "cubic":  # Keys' cubic convolution: 4 taps per resized dimension
        A = a.get("cubic_coeff_a", -0.75)
        dims, taps = [], []
        for d, ((kind, v), n) in enumerate(zip(coords, in_shape)):
            if kind == "same":
                continue
            fl = b.unary("math.floor", v)
            t_ = b.binary("sub", v, fl)
            base = b.convert(fl, b.i32)
            ws = []
            for off in (-1, 0, 1, 2):
                s_ = b.unary("math.absf", b.binary("sub", t_, float(off)))  # distance to the tap
                near = b.binary("add", b.binary("mul", b.binary("mul", b.binary("sub", b.binary("mul", s_, A + 2), A + 3), s_), s_), 1.0)
                far = b.binary("sub", b.binary("mul", b.binary("add", b.binary("mul", b.binary("sub", b.binary("mul", s_, A), 5 * A), s_), 8 * A), s_), 4 * A)
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
            for d, (kind, v) in enumerate(coords):
                if d not in dims:
                    src.append(v)
                    continue
                pos, w = taps[dims.index(d)][(combo // 4 ** dims.index(d)) % 4]
                src.append(clamp(pos, in_shape[d]) if in_shape[d] > 1 else None)
                weight = w if weight is None else b.binary("mul", weight, w)
            term = b.binary("mul", b.convert(em(op.operands[0], src, mask), b.f32), weight)
            value = term if value is None else b.binary("add", value, term)
    else:  # linear: blend 2^k corners of the resized dimensions
        lows, weights = [], []
        for (kind, v), n in zip(coords, in_shape):
            if kind == "same":
                lows.append(None)
                weights.append(None)
                continue
            fl = b.unary("math.floor", v)
            lows.append(b.convert(fl, b.i32))
            weights.append(b.binary("sub", v, fl))
        value = None
        dims = [d for d, w in enumerate(weights) if w is not None]
        for corner in range(1 << len(dims)):
            src, weight = [], None
            for d, (kind, v) in enumerate(coords):
                if weights[d] is None:
                    src.append(v)
                    continue
                bit = (corner >> dims.index(d)) & 1
                src.append(clamp(b.binary("add", lows[d], bit), in_shape[d]) if in_shape[d] > 1 else None)
                w = weights[d] if bit else b.binary("sub", b.full_like(weights[d], 1.0), weights[d])
                weight = w if weight is None else b.binary("mul", weight, w)
            term = b.binary("mul", b.convert(em(op.operands[0], src, mask), b.f32), weight)
            value = term if value is None else b.binary("add", value, term)
    inside = b.and_(*extra_masks)
    if inside is not None:
        value = b.select(b.broadcast(inside, em.shape), b.convert(value, b.f32),
                         b.const(a["extrapolation_value"], em.shape, b.f32))
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
        c = (b.binary("mul", b.binary("add", g, 1.0), (n - 1) / 2.0) if align
             else b.binary("div", b.binary("sub", b.binary("mul", b.binary("add", g, 1.0), float(n)), 1.0), 2.0))
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
                odd = b.cmp("ne", b.binary("sub", flips, b.binary("mul", b.unary("math.floor", b.binary("mul", flips, 0.5)), 2.0)), 0.0)
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
        return sample([b.convert(elementwise.OPS["tnx.round"](b, [c], {}), b.i32) for c in coords])
    lows = [b.unary("math.floor", c) for c in coords]
    fracs = [b.binary("sub", c, lo) for c, lo in zip(coords, lows)]
    lows = [b.convert(lo, b.i32) for lo in lows]
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
    n = b.convert(em(lens, [idx[bt]], mask), b.i32)
    t = idx[tt] if idx[tt] is not None else em.index(0)
    src = idx[:]
    src[tt] = b.select(b.cmp("lt", t, n), b.binary("sub", b.binary("sub", n, 1), t), t)
    return em(x, src, mask)


VIEW_MAPS = {"tnx.grid_sample": _grid_sample, "tnx.reverse_sequence": _reverse_sequence, "tnx.resize": _resize, "tnx.slice": _slice, "tnx.expand": _expand, "tnx.tile": _tile, "tnx.pad": _pad,
             "tnx.gather": _gather, "tnx.gather_elements": _gather_elements}


def compute_type(t: ir.Type) -> ir.Type:
    """The type a kernel computes a value of type `t` in: f32 for the half types, signless
    i32 for 8- and 16-bit integers, i64 for unsigned 32- and 64-bit ones (arith is signless:
    unsigned values are widened so that they compare and divide correctly)."""
    if is_float(t):
        return ir.F32Type.get() if ir.FloatType(t).width < 32 else t
    if isinstance(t, ir.IntegerType) and t.width > 1 and (t.width < 32 or t.is_unsigned):
        return ir.IntegerType.get_signless(32 if t.width < 32 else 64)
    return t


def _out_mask_and_store(b, em, out_value, out_buf, idx, mask, idx_shape=None):
    """Evaluates the kernel's output at `idx` (indices over `idx_shape`, the anchor's result
    shape, when reshapes lie between the anchor and the output) and stores it."""
    if idx_shape is not None and list(idx_shape) != shape_of(out_value):
        lin = linearize(b, idx, list(idx_shape))
        idx = delinearize(b, lin, shape_of(out_value)) if lin is not None else [None] * len(shape_of(out_value))
    val = em(out_value, idx, mask)
    offs = linearize(b, idx, shape_of(out_value))
    offs = b.broadcast(offs, em.shape) if offs is not None else b.const(0, em.shape, b.i32)
    want = ir.RankedTensorType(out_buf.type).element_type
    b.store(out_buf, offs, b.convert(val, want), b.broadcast(mask, em.shape))


def _pointwise(b, kernel, args, out_value, cfg):
    block = cfg["BLOCK"]
    dims = shape_of(out_value)
    offs = b.binary("add", b.splat(b.binary("mul", b.program_id(0), b.const(block, [], b.i32)), [block]), b.arange(block))
    mask = b.cmp("lt", offs, math.prod(dims))
    em = Emitter(b, args, [block])
    idx = delinearize(b, offs, dims)
    _out_mask_and_store(b, em, out_value, args["out"], idx, mask)


def _block_start(b, axis: int, size: int, n: int) -> ir.Value:
    """pid(axis) * size + arange(size), as a [n]-shaped i32 tile."""
    base = b.binary("mul", b.program_id(axis), b.const(size, [], b.i32))
    return b.binary("add", b.splat(base, [n]), b.arange(n))


def _dot_kernel(b, kernel, args, out_value, cfg, anchor):
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    bm, bn, bk = cfg["BLOCK_M"], cfg["BLOCK_N"], cfg["BLOCK_K"]
    m_size, n_size, k_size, groups = gemm_dims(kind, anchor)
    rm = b.expand(_block_start(b, 0, bm, bm), 1)  # [BM, 1]
    rn = b.expand(_block_start(b, 1, bn, bn), 0)  # [1, BN]
    m_ok, n_ok = b.cmp("lt", rm, m_size), b.cmp("lt", rn, n_size)
    a_attrs = attrs_of(anchor)
    x, w = anchor.operands[0], anchor.operands[1]
    if kind in ("conv", "conv_transpose"):  # any number of spatial dimensions
        out_dims = shape_of(anchor.results[0])
        x_dims, w_dims = shape_of(x), shape_of(w)
        spatial = len(out_dims) - 2
        ks, strides, dils = a_attrs["kernel_shape"], a_attrs["strides"], a_attrs["dilations"]
        pads = a_attrs["pads"][:spatial]
        c_in = x_dims[1]
        cg = (c_in if kind == "conv" else w_dims[0]) // groups  # input channels per group
        g = b.program_id(2)
        m_idx = delinearize(b, rm, [out_dims[0]] + out_dims[2:])  # nb, o_1..o_d: [BM, 1] each
        nb, outs = m_idx[0], [o if o is not None else b.const(0, [bm, 1], b.i32) for o in m_idx[1:]]
        co = b.binary("add", rn, b.binary("mul", b.splat(g, [1, bn]), n_size)) if groups > 1 else rn
    batch, a_batch, b_batch = [], [], []
    if kind == "mat_mul":  # batch dims broadcast NumPy-style; program_id(2) walks the output's
        out_dims = shape_of(anchor.results[0])
        batch = delinearize(b, b.program_id(2), out_dims[:-2]) if groups > 1 else [None] * (len(out_dims) - 2)

        def batch_of(v):
            dims = shape_of(v)[:-2]
            lead = len(batch) - len(dims)
            return [None if d == 1 else batch[lead + j] for j, d in enumerate(dims)]
        a_batch, b_batch = batch_of(x), batch_of(w)
    acc0 = b.const(0.0, [bm, bn], b.f32)
    loop = b.for_range(0, k_size, bk, [acc0])
    with ir.InsertionPoint(loop.body):
        k0 = b.splat(b.index_to_i32(loop.induction_variable), [bk])
        rk = b.binary("add", k0, b.arange(bk))
        ka, kb = b.expand(rk, 0), b.expand(rk, 1)  # [1, BK], [BK, 1]
        a_mask = b.and_(m_ok, b.cmp("lt", ka, k_size))
        b_mask = b.and_(b.cmp("lt", kb, k_size), n_ok)
        ea, eb = Emitter(b, args, [bm, bk]), Emitter(b, args, [bk, bn])
        if kind in ("conv", "conv_transpose"):
            k_idx = delinearize(b, ka, [cg] + ks)  # ci, k_1..k_d: [1, BK] each
            ci = k_idx[0] if k_idx[0] is not None else b.const(0, [1, bk], b.i32)
            taps = [k if k is not None else b.const(0, [1, bk], b.i32) for k in k_idx[1:]]
            src, inside = [], []
            for o, k, s, d, pad, n in zip(outs, taps, strides, dils, pads, x_dims[2:]):
                if kind == "conv":  # input position o * stride - pad + k * dilation
                    i = b.binary("add", b.binary("sub", b.binary("mul", o, s), pad), b.binary("mul", k, d))
                    inside += [b.cmp("ge", i, 0), b.cmp("lt", i, n)]
                else:  # the output o takes input i where i * stride = o + pad - k * dilation
                    t_ = b.binary("sub", b.binary("add", o, pad), b.binary("mul", k, d))
                    t0 = b.binary("max", t_, 0)
                    i = b.binary("div", t0, s)
                    inside += [b.cmp("ge", t_, 0), b.cmp("eq", b.binary("mod", t0, s), 0), b.cmp("lt", i, n)]
                src.append(i if n > 1 else None)
            if groups > 1:
                ci = b.binary("add", ci, b.binary("mul", b.splat(g, [1, bk]), cg))
            a_tile = ea(x, [nb, ci if c_in > 1 else None] + src, b.and_(a_mask, *inside))
            kb_idx = delinearize(b, kb, [cg] + ks)  # [BK, 1] each
            if kind == "conv":
                w_idx = [co] + kb_idx
            else:  # W is [C_in, C_out / group, k...]
                ci_b = kb_idx[0] if kb_idx[0] is not None else b.const(0, [bk, 1], b.i32)
                if groups > 1:
                    ci_b = b.binary("add", ci_b, b.binary("mul", b.splat(g, [bk, 1]), cg))
                w_idx = [ci_b, rn] + kb_idx[1:]
            b_tile = eb(w, [None if n == 1 else i for i, n in zip(w_idx, w_dims)], b_mask)
        else:
            trans_a, trans_b = a_attrs.get("transA", 0), a_attrs.get("transB", 0)
            a_tile = ea(x, a_batch + ([ka, rm] if trans_a else [rm, ka]), a_mask)
            b_tile = eb(w, b_batch + ([rn, kb] if trans_b else [kb, rn]), b_mask)
            if shape(a_tile) != [bm, bk]:
                a_tile = b.broadcast(a_tile, [bm, bk])
        acc = b.dot(b.convert(a_tile, b.f32), b.convert(b_tile, b.f32), loop.inner_iter_args[0])
        scf.YieldOp([acc])
    acc = loop.results[0]
    out_mask = b.and_(m_ok, n_ok)
    em = Emitter(b, args, [bm, bn])
    if kind in ("conv", "conv_transpose"):
        idx = [nb, co] + m_idx[1:]
        bias = operand(anchor, "b")
        if bias is not None:
            acc = b.binary("add", acc, em(bias, [co], out_mask))
    else:
        idx = batch + [rm, rn]
        if kind == "gemm":
            alpha, beta = a_attrs.get("alpha", 1.0), a_attrs.get("beta", 1.0)
            if alpha != 1.0:
                acc = b.binary("mul", acc, alpha)
            c = operand(anchor, "c")
            if c is not None and beta != 0.0:
                cs = shape_of(c)
                lead = 2 - len(cs)
                c_idx = [None if d == 1 else idx[lead + j] for j, d in enumerate(cs)]
                ct = em(c, c_idx, out_mask)
                acc = b.binary("add", acc, ct if beta == 1.0 else b.binary("mul", ct, beta))
    em.known[anchor.results[0]] = known_tile(b, acc, anchor.results[0])
    idx = [None if d == 1 else i for i, d in zip(idx, shape_of(anchor.results[0]))]
    _out_mask_and_store(b, em, out_value, args["out"], idx, out_mask, shape_of(anchor.results[0]))


def elem_type_of(v: ir.Value) -> ir.Type:
    return ir.RankedTensorType(v.type).element_type


def known_tile(b: TileBuilder, tile: ir.Value, value: ir.Value) -> ir.Value:
    """An anchor's result tile in the compute type of `value`."""
    return b.convert(tile, compute_type(elem_type_of(value)))


def _pool_kernel(b, kernel, args, out_value, cfg, anchor):
    """Max, average and Lp pooling over any number of spatial dimensions: BLOCK_P outputs x
    BLOCK_R window positions per step of a loop over the window."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    x_dims = shape_of(x)
    spatial = len(x_dims) - 2
    out_dims = shape_of(anchor.results[0])
    a = attrs_of(anchor)
    kind = {"tnx.max_pool": "max", "tnx.global_max_pool": "max", "tnx.lp_pool": "lp",
            "tnx.global_lp_pool": "lp"}.get(anchor.name, "avg")
    if anchor.name.startswith("tnx.global"):
        ks, strides, dils, pads = x_dims[2:], [1] * spatial, [1] * spatial, [0] * (2 * spatial)
        include_pad = True
    else:
        ks, strides = a["kernel_shape"], a["strides"]
        dils = a.get("dilations") or [1] * spatial
        pads = a["pads"]
        include_pad = bool(a.get("count_include_pad", 0))
    p_norm = float(a.get("p", 2))
    total, window = math.prod(out_dims), math.prod(ks)
    p = _block_start(b, 0, bp, bp)  # [BP]
    p_ok = b.cmp("lt", p, total)
    idx1 = delinearize(b, p, out_dims)  # n, c, o_1..o_d as [BP]
    idx2 = [b.expand(i, 1) if i is not None else None for i in idx1]
    outs = [o if o is not None else b.const(0, [bp, 1], b.i32) for o in idx2[2:]]
    p_ok2 = b.expand(p_ok, 1)
    acc0 = b.const(NEG_INF if kind == "max" else 0.0, [bp], b.f32)
    inits = [acc0] if kind != "avg" else [acc0, b.const(0.0, [bp], b.f32)]
    loop = b.for_range(0, window, br, inits)
    with ir.InsertionPoint(loop.body):
        r = b.expand(b.binary("add", b.splat(b.index_to_i32(loop.induction_variable), [br]), b.arange(br)), 0)
        taps = [k if k is not None else b.const(0, [1, br], b.i32) for k in delinearize(b, r, list(ks))]
        in_window = b.and_(p_ok2, b.cmp("lt", r, window))
        src, inside, padded = [], [], []
        for d, (o, k) in enumerate(zip(outs, taps)):
            i = b.binary("add", b.binary("sub", b.binary("mul", o, strides[d]), pads[d]), b.binary("mul", k, dils[d]))
            inside += [b.cmp("ge", i, 0), b.cmp("lt", i, x_dims[2 + d])]
            padded.append(b.cmp("lt", i, x_dims[2 + d] + pads[spatial + d]))
            src.append(i if x_dims[2 + d] > 1 else None)
        valid = b.broadcast(b.and_(in_window, *inside), [bp, br])
        em = Emitter(b, args, [bp, br])
        tile = b.convert(em(x, idx2[:2] + src, valid), b.f32)
        if kind == "max":
            red = b.reduce(b.select(valid, tile, NEG_INF), 1, "max")
            scf.YieldOp([b.binary("max", loop.inner_iter_args[0], red)])
        elif kind == "lp":
            powed = b.unary("math.exp", b.binary("mul", b.unary("math.log", b.unary("math.absf", tile)), p_norm))
            red = b.reduce(b.select(valid, powed, 0.0), 1, "sum")
            scf.YieldOp([b.binary("add", loop.inner_iter_args[0], red)])
        else:
            red = b.reduce(b.select(valid, tile, 0.0), 1, "sum")
            counted = valid if not include_pad else b.broadcast(b.and_(in_window, *padded), [bp, br])
            cnt = b.reduce(b.convert(counted, b.f32), 1, "sum")
            scf.YieldOp([b.binary("add", loop.inner_iter_args[0], red), b.binary("add", loop.inner_iter_args[1], cnt)])
    if kind == "max":
        result = loop.results[0]
    elif kind == "lp":
        s = loop.results[0]
        result = b.select(b.cmp("eq", s, 0.0), s, b.unary("math.exp", b.binary("div", b.unary("math.log", s), p_norm)))
    else:
        result = b.binary("div", loop.results[0], b.binary("max", loop.results[1], 1.0))
    em = Emitter(b, args, [bp])
    em.known[anchor.results[0]] = known_tile(b, result, anchor.results[0])
    _out_mask_and_store(b, em, out_value, args["out"], idx1, p_ok, out_dims)


def _softmax_kernel(b, kernel, args, out_value, cfg, anchor):
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    dims = shape_of(anchor.results[0])
    axis = attrs_of(anchor)["axis"]
    n = dims[axis]
    inner = math.prod(dims[axis + 1:])
    rows = math.prod(dims) // n
    p = b.expand(_block_start(b, 0, bp, bp), 1)  # [BP, 1]
    j = b.expand(b.arange(br), 0)  # [1, BR]
    outer_i = b.binary("div", p, inner) if inner > 1 else p
    inner_i = b.binary("mod", p, inner) if inner > 1 else None
    idx = (delinearize(b, outer_i, dims[:axis]) + [j if n > 1 else None]
           + (delinearize(b, inner_i, dims[axis + 1:]) if inner_i is not None else [None] * len(dims[axis + 1:])))
    mask = b.broadcast(b.and_(b.cmp("lt", p, rows), b.cmp("lt", j, n)), [bp, br])
    em = Emitter(b, args, [bp, br])
    if anchor.name in ("tnx.cum_sum", "tnx.cum_prod"):
        a = attrs_of(anchor)
        src = idx[:]
        load_mask = mask
        step = b.binary("sub", j, 1) if a["exclusive"] else j  # exclusive: scan the row shifted by one
        if a["exclusive"]:
            load_mask = b.and_(mask, b.broadcast(b.cmp("ge", j, 1), [bp, br]))
        if n > 1:  # reverse: element j of the scan sits at n - 1 - j
            src[axis] = b.binary("sub", b.full_like(j, n - 1), step) if a["reverse"] else step
        v = em(anchor.operands[0], src, load_mask)
        prod = anchor.name == "tnx.cum_prod"
        v = b.select(load_mask, v, b.full_like(v, 1 if prod else 0))
        y = b.scan(v, 1, "prod" if prod else "sum")
        if a["reverse"] and n > 1:
            idx[axis] = b.binary("sub", b.full_like(j, n - 1), j)
        em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
        _out_mask_and_store(b, em, out_value, args["out"], idx, mask, dims)
        return
    x = b.select(mask, b.convert(em(anchor.operands[0], idx, mask), b.f32), LOWEST_F32)
    mx = b.expand(b.reduce(x, 1, "max"), 1)
    e = b.select(mask, b.unary("math.exp", b.binary("sub", x, mx)), 0.0)
    s = b.expand(b.binary("max", b.reduce(e, 1, "sum"), 1.0), 1)  # a live row sums to >= 1
    if anchor.name == "tnx.log_softmax":
        y = b.binary("sub", b.binary("sub", x, mx), b.unary("math.log", s))
    elif anchor.name == "tnx.hardmax":  # one-hot of the first maximum
        jj = b.broadcast(j, [bp, br])
        first = b.reduce(b.select(b.and_(mask, b.cmp("eq", x, mx)), jj, b.full_like(jj, br)), 1, "min")
        y = b.convert(b.cmp("eq", jj, b.expand(first, 1)), b.f32)
    else:
        y = b.binary("div", e, s)
    em.known[anchor.results[0]] = known_tile(b, y, anchor.results[0])
    _out_mask_and_store(b, em, out_value, args["out"], idx, mask, dims)


def _extreme(b, et, largest: bool):
    """+inf / -inf, or the integer type's bounds."""
    if is_float(et):
        return float("inf") if largest else NEG_INF
    w = ir.IntegerType(et).width
    if w == 1:  # bool: true is the largest
        return 1 if largest else 0
    return (2 ** (w - 1) - 1) if largest else -(2 ** (w - 1))


def _reduce_kernel(b, kernel, args, out_value, cfg, anchor):
    """ReduceX and ArgMax/ArgMin over `axes`: BLOCK_P output elements x BLOCK_R reduced
    elements per step of a loop over the reduced extent."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    dims = shape_of(x)
    a = attrs_of(anchor)
    axes = a["axes"]
    kind = anchor.name[len("tnx."):]
    kept = [d for d in range(len(dims)) if d not in axes]
    kdims, rdims = [dims[d] for d in kept], [dims[d] for d in axes]
    n_out, n_red = math.prod(kdims), math.prod(rdims)
    et = compute_type(ir.RankedTensorType(x.type).element_type)
    if isinstance(et, ir.IntegerType) and et.width == 1:
        et = b.i32  # bools reduce as 0 / 1
    p = _block_start(b, 0, bp, bp)
    p_ok = b.cmp("lt", p, n_out)
    kidx = [b.expand(i, 1) if i is not None else None for i in delinearize(b, p, kdims)]
    p_ok2 = b.expand(p_ok, 1)

    def chunks(inits, body):
        if n_red == 0:  # an empty reduction: the neutral element
            return inits
        loop = b.for_range(0, n_red, br, inits)
        with ir.InsertionPoint(loop.body):
            r = b.expand(b.binary("add", b.splat(b.index_to_i32(loop.induction_variable), [br]), b.arange(br)), 0)
            ridx = delinearize(b, r, rdims)
            idx, ki, ri = [], iter(kidx), iter(ridx)
            for d in range(len(dims)):
                idx.append(next(ri) if d in axes else next(ki))
            valid = b.broadcast(b.and_(p_ok2, b.cmp("lt", r, n_red)), [bp, br])
            v = b.convert(Emitter(b, args, [bp, br])(x, idx, valid), et)
            scf.YieldOp(body(loop.inner_iter_args, v, valid, r))
        return loop.results

    def filled(v, valid, value):
        return b.select(valid, v, b.full_like(v, value))

    if kind in ("arg_max", "arg_min"):
        largest = kind == "arg_max"
        last = a.get("select_last_index", 0)
        big = 2 ** 30

        def step(it, v, valid, r):
            best, where_ = it
            cm = b.reduce(filled(v, valid, _extreme(b, et, not largest)), 1, "max" if largest else "min")
            hit = b.and_(valid, b.cmp("eq", v, b.expand(cm, 1)))
            rr = b.broadcast(r, [bp, br])
            ci = (b.reduce(b.select(hit, rr, b.full_like(rr, -1)), 1, "max") if last
                  else b.reduce(b.select(hit, rr, b.full_like(rr, big)), 1, "min"))
            pred = ("ge" if last else "gt") if largest else ("le" if last else "lt")
            better = b.cmp(pred, cm, best)
            return [b.select(better, cm, best), b.select(better, ci, where_)]
        _, result = chunks([b.const(_extreme(b, et, not largest), [bp], et), b.const(0, [bp], b.i32)], step)
    elif kind == "reduce_log_sum_exp":
        (m,) = chunks([b.const(NEG_INF, [bp], et)], lambda it, v, valid, r: [
            b.binary("max", it[0], b.reduce(filled(v, valid, NEG_INF), 1, "max"))])
        safe_m = b.select(b.cmp("eq", m, NEG_INF), b.full_like(m, 0.0), m)
        mb = b.expand(safe_m, 1)
        (s,) = chunks([b.const(0.0, [bp], et)], lambda it, v, valid, r: [
            b.binary("add", it[0], b.reduce(filled(b.unary("math.exp", b.binary("sub", v, mb)), valid, 0.0), 1, "sum"))])
        result = b.binary("add", b.unary("math.log", s), safe_m)
    else:
        prologue = {"reduce_l1": lambda v: elementwise.OPS["tnx.abs"](b, [v], {}),
                    "reduce_l2": lambda v: b.binary("mul", v, v),
                    "reduce_sum_square": lambda v: b.binary("mul", v, v)}.get(kind, lambda v: v)
        combine, neutral = {"reduce_max": ("max", _extreme(b, et, False)), "reduce_min": ("min", _extreme(b, et, True)),
                            "reduce_prod": ("prod", 1)}.get(kind, ("sum", 0))
        merge = {"max": "max", "min": "min", "prod": "mul", "sum": "add"}[combine]
        (acc,) = chunks([b.const(neutral, [bp], et)], lambda it, v, valid, r: [
            b.binary(merge, it[0], b.reduce(filled(prologue(v), valid, neutral), 1, combine))])
        result = acc
        if kind == "reduce_mean":
            result = b.binary("div", acc, n_red)
        elif kind == "reduce_l2":
            result = b.unary("math.sqrt", acc)
        elif kind == "reduce_log_sum":
            result = b.unary("math.log", acc)
    out_dims = shape_of(anchor.results[0])
    em = Emitter(b, args, [bp])
    em.known[anchor.results[0]] = known_tile(b, result, anchor.results[0])
    _out_mask_and_store(b, em, out_value, args["out"], delinearize(b, p, out_dims), p_ok, out_dims)


def _norm_kernel(b, kernel, args, out_value, cfg, anchor):
    """MeanVarianceNormalization over `axes`, three loops over the reduced extent: the mean,
    the variance (two-pass, for accuracy), then the normalized values with the epilogue."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    x = anchor.operands[0]
    dims = shape_of(x)
    a = attrs_of(anchor)
    axes = a["axes"]
    kept = [d for d in range(len(dims)) if d not in axes]
    kdims, rdims = [dims[d] for d in kept], [dims[d] for d in axes]
    n_out, n_red = math.prod(kdims), math.prod(rdims)
    p = _block_start(b, 0, bp, bp)
    p_ok2 = b.expand(b.cmp("lt", p, n_out), 1)
    kidx = [b.expand(i, 1) if i is not None else None for i in delinearize(b, p, kdims)]

    def loop(inits, body):
        f = b.for_range(0, n_red, br, inits)
        with ir.InsertionPoint(f.body):
            r = b.expand(b.binary("add", b.splat(b.index_to_i32(f.induction_variable), [br]), b.arange(br)), 0)
            ridx, ki, ri = delinearize(b, r, rdims), iter(kidx), None
            ri = iter(ridx)
            idx = [next(ri) if d in axes else next(ki) for d in range(len(dims))]
            valid = b.broadcast(b.and_(p_ok2, b.cmp("lt", r, n_red)), [bp, br])
            em = Emitter(b, args, [bp, br])
            v = b.convert(em(x, idx, valid), b.f32)
            scf.YieldOp(body(f.inner_iter_args, v, valid, idx, em))
        return f.results

    zero = b.const(0.0, [bp], b.f32)
    (s,) = loop([zero], lambda it, v, valid, idx, em: [
        b.binary("add", it[0], b.reduce(b.select(valid, v, b.full_like(v, 0.0)), 1, "sum"))])
    mean = b.expand(b.binary("div", s, float(n_red)), 1)
    (ss,) = loop([zero], lambda it, v, valid, idx, em: [b.binary("add", it[0], b.reduce(
        b.select(valid, b.binary("mul", b.binary("sub", v, mean), b.binary("sub", v, mean)), b.full_like(v, 0.0)), 1, "sum"))])
    rstd = b.expand(b.unary("math.rsqrt", b.binary("add", b.binary("div", ss, float(n_red)), a["epsilon"])), 1)

    def write(it, v, valid, idx, em):
        em.known[anchor.results[0]] = known_tile(b, b.binary("mul", b.binary("sub", v, mean), rstd), anchor.results[0])
        _out_mask_and_store(b, em, out_value, args["out"], idx, valid, dims)
        return [it[0]]
    loop([zero], write)


def _top_k_kernel(b, kernel, args, out_value, cfg, anchor):
    """TopK-11: K rounds over a row held in one block, each taking the largest (or
    smallest) remaining element, the lowest index first among equals, and storing it."""
    bp, br = cfg["BLOCK_P"], cfg["BLOCK_R"]
    a = attrs_of(anchor)
    x = anchor.operands[0]
    dims, out_dims = shape_of(x), shape_of(anchor.results[0])
    axis, k = a["axis"], a["k"]
    n, inner = dims[axis], math.prod(dims[axis + 1:])
    rows = math.prod(dims) // n
    p = b.expand(_block_start(b, 0, bp, bp), 1)
    j = b.expand(b.arange(br), 0)
    outer_i = b.binary("div", p, inner) if inner > 1 else p
    inner_i = b.binary("mod", p, inner) if inner > 1 else None
    head = delinearize(b, outer_i, dims[:axis])
    tail = delinearize(b, inner_i, dims[axis + 1:]) if inner_i is not None else [None] * len(dims[axis + 1:])
    mask = b.broadcast(b.and_(b.cmp("lt", p, rows), b.cmp("lt", j, n)), [bp, br])
    v = b.convert(Emitter(b, args, [bp, br])(x, head + [j if n > 1 else None] + tail, mask), b.f32)
    if not a["largest"]:
        v = b.unary("arith.negf", v)
    v = b.select(mask, v, NEG_INF)
    jj = b.broadcast(j, [bp, br])
    row_ok = b.cmp("lt", p, rows)
    loop = b.for_range(0, k, 1, [v])
    with ir.InsertionPoint(loop.body):
        cur = loop.inner_iter_args[0]
        best = b.expand(b.reduce(cur, 1, "max"), 1)
        first = b.expand(b.reduce(b.select(b.and_(mask, b.cmp("eq", cur, best)), jj, b.full_like(jj, br)), 1, "min"), 1)
        i = b.splat(b.index_to_i32(loop.induction_variable), [bp, 1])
        if a["output"] == 0:
            value = best if a["largest"] else b.unary("arith.negf", best)
        else:
            value = first
        idx = head + [i if out_dims[axis] > 1 else None] + tail
        offs = linearize(b, [None if d == 1 else t for t, d in zip(idx, out_dims)], out_dims)
        offs = offs if offs is not None else b.const(0, [bp, 1], b.i32)
        want = ir.RankedTensorType(args["out"].type).element_type
        b.store(args["out"], b.broadcast(offs, [bp, 1]), b.convert(value, want), row_ok)
        scf.YieldOp([b.select(b.cmp("eq", jj, first), b.full_like(cur, NEG_INF), cur)])


TEMPLATES = {"conv": _dot_kernel, "conv_transpose": _dot_kernel, "gemm": _dot_kernel, "mat_mul": _dot_kernel,
             "pool": _pool_kernel, "softmax": _softmax_kernel, "reduce": _reduce_kernel, "norm": _norm_kernel,
             "top_k": _top_k_kernel}


def lower_kernel(kernel: ir.Operation) -> None:
    """Replaces the tnx-level kernel `kernel` by its tile-level form, in place."""
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    cfg = {k: ir.IntegerAttr(kernel.attributes["tnx.block"][k]).value
           for k in ("BLOCK", "BLOCK_M", "BLOCK_N", "BLOCK_K", "BLOCK_P", "BLOCK_R")
           if k in ir.DictAttr(kernel.attributes["tnx.block"])}
    old_block = kernel.regions[0].blocks[0]
    ftype = ir.FunctionType(ir.TypeAttr(kernel.attributes["function_type"]).value)
    ret = ops(old_block)[-1]
    out_value = ret.operands[0]
    anchor = anchor_of(kernel)
    sym = ir.StringAttr(kernel.attributes["sym_name"]).value
    with ir.InsertionPoint(kernel), kernel.location:
        new = func.FuncOp(sym, (list(ftype.inputs) + list(ftype.results), []), visibility="private")
        for name in kernel.attributes:
            if name.startswith("tnx."):
                new.operation.attributes[name] = kernel.attributes[name]
        block = new.add_entry_block()
    args = {old: arg for old, arg in zip(old_block.arguments, block.arguments)}
    args["out"] = block.arguments[len(ftype.inputs)]
    b = TileBuilder()
    with ir.InsertionPoint(block), kernel.location:
        if math.prod(shape_of(out_value)) == 0:
            pass  # an empty output: nothing to compute (the tile pass gave it an empty grid)
        elif kind == "pointwise":
            _pointwise(b, kernel, args, out_value, cfg)
        else:
            TEMPLATES[kind](b, kernel, args, out_value, cfg, anchor)
        func.ReturnOp([])
    kernel.erase()


def run(module: ir.Operation, pass_=None) -> None:
    kernels = [f for f in functions(module) if "tnx.kind" in f.attributes]
    for k in kernels:
        lower_kernel(k)
    for fn in functions(module):
        if "tnx.kind" in fn.attributes:
            continue
        for op in ops(fn.regions[0].blocks[0]):
            if op.name != "func.call":
                continue
            with ir.InsertionPoint(op), op.location:
                out = op.results[0]
                empty = ir.Operation.create("bufferization.alloc_tensor", results=[out.type]).results[0]
                func.CallOp([], ir.FlatSymbolRefAttr(op.attributes["callee"]), list(op.operands) + [empty])
            out.replace_all_uses_with(empty)
            op.erase()
