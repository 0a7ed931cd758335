"""Verifiers of the tnx ops: the ONNX spec's rules on operand shapes, dtypes and attributes
(https://onnx.ai/onnx/operators/), one function per op, keyed like the op table
(`tritonnx.dialects.ops.OPS`). A model that breaks them is refused before any pass reads
past a buffer, with an `InvalidModelError` naming the node, its op type and opset.

`VERIFIERS = {"Conv": conv, ...}`; `verify_op(op, constant)` runs the one for a tnx op.
`constant(value)` returns the numpy value of an operand known at compile time, or None.
A dimension that is dynamic (`?`) satisfies every rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, overload

import numpy as np
from mlir import ir

from tritonnx.dialects import onnx_op_type, operand_specs
from tritonnx.dialects.builders import attrs_of, np_dtype
from tritonnx.dialects.ops import BINARY, OPS, REDUCTIONS
from tritonnx.errors import InvalidModelError

if TYPE_CHECKING:
    import onnx

# A node that onnx's function inliner generated is named `<call node> (<call op>): <inner>`
# by `tritonnx.importers.onnx.expand_functions`.
INLINED = re.compile(r"(?P<node>.*) \((?P<op>[A-Za-z_][\w.]*)\): (?P<inner>.+)", re.DOTALL)


def inlined_name(call: str, call_op: str, inner: str) -> str:
    """The name given to a node that the inliner expanded from node `call` (`call_op`)."""
    return f"{call} ({call_op}): {inner}"


def label(name: str, op_type: str, opset: int | None = None) -> str:
    """`node conv1 (Conv, opset 17)`; for a node of an inlined function, the user's node:
    `node drop1 (Bernoulli, expanded by the ONNX function inliner: RandomUniformLike, opset 17)`."""
    at = f", opset {opset}" if opset is not None else ""
    m = INLINED.fullmatch(name)
    if m:
        return f"node {m['node']} ({m['op']}, expanded by the ONNX function inliner: {op_type}{at})"
    return f"node {name} ({op_type}{at})"


def node_names(graph: onnx.GraphProto) -> list[str]:
    """The name of each node of `graph` in tritonnx's plans, dumps and errors: its own name,
    or for an unnamed node `<op_type>_<index>` with its index in `graph` (suffixed with
    `_` until no other node has it). `prepare` names the user's nodes so before anything
    changes the graph, so these are the names of the nodes of the model as given (an
    artifact's model.onnx) and the report, the graph picture and --check-layers find them."""
    taken = {n.name for n in graph.node if n.name}
    names = []
    for i, node in enumerate(graph.node):
        name = node.name
        if not name:
            name = f"{node.op_type}_{i}"
            while name in taken:
                name += "_"
            taken.add(name)
        names.append(name)
    return names


def user_node(name: str, op_type: str) -> tuple[str, str]:
    """(the user's node name, its op type) for a node name that may be an inlined one."""
    m = INLINED.fullmatch(name)
    return (m["node"], m["op"]) if m else (name, op_type)


def _dims(t: ir.Type) -> list[int | None] | None:
    if not isinstance(t, ir.RankedTensorType):
        try:
            t = ir.RankedTensorType(t)
        except ValueError:
            return None
    return [int(d) if d >= 0 else None for d in t.shape]


def fmt(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _known(*dims) -> bool:
    return all(d is not None for d in dims)


def broadcast(*shapes) -> list | None:
    """The multidirectional (NumPy) broadcast of `shapes`, None if they do not broadcast."""
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        sizes = {d for d in dims if d is not None and d != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else (None if None in dims else 1))
    return out


def broadcasts_to(src, dst) -> bool:
    """Unidirectional broadcasting: `src` can be broadcast to `dst`."""
    if len(src) > len(dst):
        return False
    return all(s is None or d is None or s in (1, d) for s, d in zip(src, dst[len(dst) - len(src) :]))


class Node:
    """What a verifier reads of one tnx op: operands by their spec name, shapes, dtypes,
    attributes, constant values; `fail` raises the error naming the node."""

    def __init__(self, op: ir.Operation, constant: Callable[[ir.Value], np.ndarray | None]):
        self.op = op.operation
        self.type = onnx_op_type(self.op.name)
        self.attrs = attrs_of(self.op)
        self._constant = constant
        loc = self.op.location
        self.name = loc.name_str if loc.is_a_name() else self.op.name
        names = [n for n, _ in operand_specs()[self.op.name]]
        spec = [o.rstrip("?") for o in OPS[self.type].operands] if self.type in OPS else names
        self._index = {}
        sizes = (
            list(ir.DenseI32ArrayAttr(self.op.attributes["operandSegmentSizes"]))
            if "operandSegmentSizes" in self.op.attributes
            else [1] * len(names)
        )
        at = 0
        for spec_name, size in zip(spec, sizes):
            if size and at < len(self.op.operands):
                self._index[spec_name] = at
            at += size

    def __getitem__(self, name: str) -> ir.Value | None:
        i = self._index.get(name)
        return None if i is None else self.op.operands[i]

    def shape(self, name: str) -> list | None:
        v = self[name]
        return None if v is None else _dims(v.type)

    def dtype(self, name: str) -> np.dtype | None:
        v = self[name]
        try:
            return None if v is None else np_dtype(ir.RankedTensorType(v.type).element_type)
        except (KeyError, ValueError):
            return None

    def value(self, name: str) -> np.ndarray | None:
        v = self[name]
        return None if v is None else self._constant(v)

    def ints(self, name: str, operand: str | None = None) -> list[int] | None:
        """An int-list parameter: the attribute `name`, else the constant operand."""
        if self.attrs.get(name) is not None:
            a = self.attrs[name]
            return [int(x) for x in (a if isinstance(a, list) else [a])]
        v = self.value(operand or name)
        return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]

    @property
    def out(self) -> list | None:
        return _dims(self.op.results[0].type) if len(self.op.results) else None

    @property
    def opset(self) -> int | None:
        parent = self.op.parent
        while parent is not None and parent.name != "builtin.module":
            parent = parent.parent
        if parent is None:
            return None
        for key in ("tnx.source_opset", "tnx.opset"):
            if key in parent.attributes:
                return ir.IntegerAttr(parent.attributes[key]).value
        return None

    def fail(self, message: str) -> NoReturn:
        raise InvalidModelError(f"{label(self.name, self.type, self.opset)}: {message}.")

    # shared rules
    def rank_at_least(self, name: str, rank: int, what: str = "") -> list | None:
        s = self.shape(name)
        if s is not None and len(s) < rank:
            self.fail(
                f"input {name} has rank {len(s)} (shape {fmt(s)}); {self.type} needs rank {rank} or more"
                + (f" ({what})" if what else "")
            )
        return s

    @overload
    def axis(self, axis: int, rank: int, what: str = ..., extra: int = ...) -> int: ...
    @overload
    def axis(self, axis: None, rank: int, what: str = ..., extra: int = ...) -> None: ...

    def axis(self, axis: int | None, rank: int, what: str = "axis", extra: int = 0) -> int | None:
        """Checks -rank-extra <= axis < rank+extra (extra 1: Flatten's axis may equal rank)."""
        if axis is None:
            return None
        lo, hi = -rank, rank - 1 + extra
        if not lo <= axis <= hi:
            self.fail(f"{what} {axis} is out of range [{lo}, {hi}] for a rank-{rank} input")
        return axis + rank if axis < 0 else axis

    def vector(self, name: str, length: int | None, of: str):
        """Operand `name` is 1-D with `length` elements (`of` says what length is)."""
        s = self.shape(name)
        if s is None or length is None:
            return
        if len(s) != 1 or (s[0] is not None and s[0] != length):
            self.fail(f"{name} has shape {fmt(s)} but must be 1-D of length {length} ({of})")

    def same_dtype(self, *names: str):
        types = {n: self.dtype(n) for n in names if self[n] is not None}
        if len({t for t in types.values() if t is not None}) > 1:
            listed = ", ".join(f"{n} is {t}" for n, t in types.items())
            self.fail(f"operands must have one element type ({listed})")


VERIFIERS: dict[str, Callable[[Node], None]] = {}


def verifier(*names: str):
    def register(fn):
        for name in names:
            VERIFIERS[name] = fn
        return fn

    return register


def verify_op(op: ir.Operation, constant: Callable[[ir.Value], np.ndarray | None] = lambda v: None) -> None:
    """Runs the verifier of a tnx op (none for ops without rules)."""
    fn = VERIFIERS.get(onnx_op_type(op.operation.name))
    if fn is not None:
        fn(Node(op, constant))


# ---- convolutions and matrix products ---------------------------------------------------


def _spatial_attrs(n: Node, spatial: int, kernel: list | None):
    k = n.attrs.get("kernel_shape")
    if k is not None:
        if len(k) != spatial:
            n.fail(f"kernel_shape {k} has {len(k)} entries for {spatial} spatial dimensions")
        if kernel is not None and any(_known(a) and a != b for a, b in zip(kernel, k)):
            n.fail(f"kernel_shape {k} does not match W's spatial shape {fmt(kernel)}")
        if any(x < 1 for x in k):
            n.fail(f"kernel_shape {k} has a size below 1")
    for attr in ("strides", "dilations"):
        v = n.attrs.get(attr)
        if v is not None:
            if len(v) != spatial:
                n.fail(f"{attr} {v} has {len(v)} entries for {spatial} spatial dimensions")
            if any(x < 1 for x in v):
                n.fail(f"{attr} {v} must be positive")
    pads = n.attrs.get("pads")
    if pads is not None:
        if len(pads) != 2 * spatial:
            n.fail(f"pads {pads} has {len(pads)} entries; {spatial} spatial dimensions need {2 * spatial}")
        if any(p < 0 for p in pads):
            n.fail(f"pads {pads} must not be negative")


def _conv_operands(n: Node, out_channels_axis: int | None):
    """(X shape, W shape, group) of a Conv or ConvTranspose after the checks they share (rank,
    group dividing the channels); None when a shape is unknown. `out_channels_axis`: W's
    axis of output channels that group must divide (Conv: 0), None for none."""
    x = n.rank_at_least("X", 3, "N x C x D1 x ...")
    w = n.shape("W")
    if x is None or w is None:
        return None
    if len(w) != len(x):
        n.fail(f"W has rank {len(w)} (shape {fmt(w)}) but X has rank {len(x)} (shape {fmt(x)})")
    group = int(n.attrs.get("group", 1))
    if group < 1:
        n.fail(f"group {group} must be 1 or more")
    c = x[1]
    if c is not None and c % group:
        n.fail(f"group {group} does not divide the {c} input channels of X (shape {fmt(x)})")
    m = w[out_channels_axis] if out_channels_axis is not None else None
    if m is not None and m % group:
        n.fail(f"group {group} does not divide the {m} output channels of W (shape {fmt(w)})")
    return x, w, group


@verifier("Conv")
def conv(n: Node):
    found = _conv_operands(n, 0)
    if found is None:
        return
    x, w, group = found
    c, m = x[1], w[0]
    if _known(c, w[1]) and c != w[1] * group:
        n.fail(f"input X has {c} channels but W expects {w[1] * group} (W shape {fmt(w)}, group {group})")
    _spatial_attrs(n, len(x) - 2, w[2:])
    n.vector("B", m, "W's output channels")
    n.same_dtype("X", "W", "B")


@verifier("ConvTranspose")
def conv_transpose(n: Node):
    found = _conv_operands(n, None)
    if found is None:
        return
    x, w, group = found
    c = x[1]
    if _known(c, w[0]) and c != w[0]:
        n.fail(f"input X has {c} channels but W expects {w[0]} (W shape {fmt(w)}, group {group})")
    _spatial_attrs(n, len(x) - 2, w[2:])
    n.vector("B", None if w[1] is None else w[1] * group, "W's output channels times group")
    n.same_dtype("X", "W", "B")


@verifier("Gemm")
def gemm(n: Node):
    a, b = n.shape("A"), n.shape("B")
    if a is None or b is None:
        return
    for name, s in (("A", a), ("B", b)):
        if len(s) != 2:
            n.fail(f"input {name} has shape {fmt(s)}; Gemm takes matrices (rank 2)")
    ta, tb = int(n.attrs.get("transA", 0)), int(n.attrs.get("transB", 0))
    m, k = (a[1], a[0]) if ta else (a[0], a[1])
    k2, nn = (b[1], b[0]) if tb else (b[0], b[1])
    if _known(k, k2) and k != k2:
        n.fail(
            f"the inner dimensions differ: A' is {fmt([m, k])} and B' is {fmt([k2, nn])} "
            f"(A {fmt(a)}, B {fmt(b)}, transA {ta}, transB {tb})"
        )
    c = n.shape("C")
    if c is not None and not broadcasts_to(c, [m, nn]):
        n.fail(f"bias C of shape {fmt(c)} does not broadcast to the output shape {fmt([m, nn])}")
    n.same_dtype("A", "B", "C")


@verifier("MatMul")
def matmul(n: Node):
    a, b = n.shape("A"), n.shape("B")
    if a is None or b is None:
        return
    if not a or not b:
        n.fail(f"MatMul takes tensors of rank 1 or more (A {fmt(a)}, B {fmt(b)})")
    ka = a[-1]
    kb = b[0] if len(b) == 1 else b[-2]
    if _known(ka, kb) and ka != kb:
        n.fail(f"the inner dimensions differ: A {fmt(a)} has {ka} columns but B {fmt(b)} has {kb} rows")
    if len(a) > 2 and len(b) > 2 and broadcast(a[:-2], b[:-2]) is None:
        n.fail(f"the batch dimensions of A {fmt(a)} and B {fmt(b)} do not broadcast")
    n.same_dtype("A", "B")


# ---- normalizations ---------------------------------------------------------------------


def _channels(n: Node, name: str, rank: int) -> int | None:
    x = n.rank_at_least(name, rank, "N x C x ...")
    return None if x is None else x[1]


@verifier("BatchNormalization")
def batch_norm(n: Node):
    c = _channels(n, "X", 2)
    for name in ("scale", "B", "input_mean", "input_var"):
        n.vector(name, c, "the channels of X")


@verifier("InstanceNormalization")
def instance_norm(n: Node):
    c = _channels(n, "input", 3)
    for name in ("scale", "B"):
        n.vector(name, c, "the channels of the input")


@verifier("GroupNormalization")
def group_norm(n: Node):
    c = _channels(n, "X", 2)
    g = n.attrs.get("num_groups")
    if g is None or c is None:
        return
    if g < 1 or c % g:
        n.fail(f"num_groups {g} does not divide the {c} channels of X")
    lengths = (c,) if (n.opset or 21) >= 21 else (c, g)
    for name in ("scale", "bias"):
        s = n.shape(name)
        if s is not None and (len(s) != 1 or (s[0] is not None and s[0] not in lengths)):
            n.fail(f"{name} has shape {fmt(s)} but must be 1-D of length {c} (the channels of X)")


@verifier("LayerNormalization")
def layer_norm(n: Node):
    x = n.shape("X")
    if x is None:
        return
    axis = n.axis(n.attrs.get("axis", -1), len(x))
    normalized = x[axis:]
    for name in ("Scale", "B"):
        s = n.shape(name)
        if s is not None and not broadcasts_to(s, normalized):
            n.fail(
                f"{name} has shape {fmt(s)} but the normalized shape (X {fmt(x)} from axis {axis}) is {fmt(normalized)}"
            )


@verifier("MeanVarianceNormalization")
def mvn(n: Node):
    x = n.shape("X")
    if x is not None:
        _axes(n, n.attrs.get("axes"), len(x))


@verifier("LpNormalization", "Softmax", "LogSoftmax", "Hardmax")
def axis_op(n: Node):
    x = n.shape(OPS[n.type].operands[0])
    if x is not None:
        n.axis(n.attrs.get("axis"), len(x))


@verifier("LRN")
def lrn(n: Node):
    n.rank_at_least("X", 2, "N x C x ...")
    size = n.attrs.get("size")
    if size is not None and size < 1:
        n.fail(f"size {size} must be 1 or more")


# ---- pooling and reductions ---------------------------------------------------------------


@verifier("MaxPool", "AveragePool", "LpPool")
def pool(n: Node):
    x = n.rank_at_least("X", 3, "N x C x D1 x ...")
    if x is None:
        return
    if n.attrs.get("kernel_shape") is None:
        n.fail("the attribute kernel_shape is required")
    _spatial_attrs(n, len(x) - 2, None)


@verifier("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(n: Node):
    n.rank_at_least("X", 2, "N x C x ...")


@overload
def _axes(n: Node, axes: None, rank: int, extra: int = ...) -> None: ...
@overload
def _axes(n: Node, axes: int | list[int], rank: int, extra: int = ...) -> list[int]: ...


def _axes(n: Node, axes, rank: int, extra: int = 0) -> list[int] | None:
    if axes is None:
        return None
    axes = [axes] if isinstance(axes, int) else list(axes)
    norm = [n.axis(int(a), rank + extra, "axis") for a in axes]
    if len(set(norm)) != len(norm):
        n.fail(f"axes {axes} repeat an axis")
    return norm


@verifier(*REDUCTIONS)
def reduction(n: Node):
    x = n.shape("data")
    if x is not None:
        _axes(n, n.ints("axes"), len(x))


@verifier("ArgMax", "ArgMin")
def arg_reduce(n: Node):
    x = n.shape("data")
    if x is not None:
        n.axis(n.attrs.get("axis", 0), len(x))


@verifier("CumSum", "CumProd")
def cumulative(n: Node):
    x = n.shape("x")
    axis = n.ints("axis")
    if x is not None and axis:
        n.axis(axis[0], len(x))


@verifier("TopK")
def top_k(n: Node):
    x = n.shape("X")
    if x is None:
        return
    axis = n.axis(n.attrs.get("axis", -1), len(x))
    k = n.ints("k", "K")
    if k and axis is not None and x[axis] is not None and not 0 <= k[0] <= x[axis]:
        n.fail(f"k {k[0]} is out of range [0, {x[axis]}] (axis {axis} of X {fmt(x)})")


@verifier("LSTM", "GRU", "RNN")
def recurrent(n: Node):
    """LSTM-22, GRU-22, RNN-22 in tritonnx's form (`tritonnx.importers.recurrent`): XW
    [D, seq*batch, G*H], the result [seq + 1 (+ 1 for LSTM), D, batch, H], R [D, G*H, H], B [D, 2*G*H], sequence_lens [batch] (int32),
    initial_h / initial_c [D, batch, H], P [D, 3*H]; D is 2 for direction bidirectional."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[n.type]
    xw, r = n.shape("XW"), n.shape("R")
    direction = n.attrs.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        n.fail(f"direction {direction!r} is not forward, reverse or bidirectional")
    out = n.out
    states = 2 if n.type == "LSTM" else 1
    if xw is None or r is None or out is None or len(xw) != 3 or len(r) != 3 or len(out) != 4:
        n.fail("the projected X and R must be 3-D, the result 4-D")
    d, rows, gh = xw
    seq = out[0] - states if _known(out[0]) else None
    batch = out[2]
    if _known(rows, seq, batch) and rows != seq * batch:
        n.fail(f"the projected X has {rows} rows but {seq} steps of batch {batch} need {seq * batch}")
    hidden = r[2]
    want_d = 2 if direction == "bidirectional" else 1
    if _known(d) and d != want_d:
        n.fail(f"W has {d} directions but direction {direction} needs {want_d}")
    if _known(hidden, gh) and gh != gates * hidden:
        n.fail(f"W has {gh} rows but {gates} gates of hidden_size {hidden} need {gates * hidden}")
    expect = {
        "R": [d, gates * hidden, hidden],
        "B": [d, 2 * gates * hidden],
        "sequence_lens": [batch],
        "initial_h": [d, batch, hidden],
        "initial_c": [d, batch, hidden],
        "P": [d, 3 * hidden],
    }
    for name, dims in expect.items():
        s = n.shape(name)
        if s is None:
            continue
        if len(s) != len(dims) or any(_known(a, b) and a != b for a, b in zip(s, dims)):
            n.fail(f"{name} has shape {fmt(s)} but must be {fmt(dims)}")
    if n["sequence_lens"] is not None and n.dtype("sequence_lens") != np.int32:
        n.fail(f"sequence_lens must be int32, not {n.dtype('sequence_lens')}")
    lens = n.value("sequence_lens")
    if lens is not None and _known(seq) and (np.any(lens < 0) or np.any(lens > seq)):
        n.fail(f"sequence_lens {lens.tolist()} must lie in [0, {seq}]")


# ---- elementwise --------------------------------------------------------------------------


def _broadcasting(*names: str, same_type: bool = True):
    def check(n: Node):
        shapes = {name: n.shape(name) for name in names if n[name] is not None}
        if len(shapes) > 1 and broadcast(*shapes.values()) is None:
            listed = ", ".join(f"{k} {fmt(v)}" for k, v in shapes.items())
            n.fail(f"the operands do not broadcast ({listed})")
        if same_type:
            n.same_dtype(*names)

    return check


for _name in BINARY + ("Mod", "Max", "Min", "Sum", "Mean"):
    VERIFIERS[_name] = _broadcasting("A", "B", same_type=_name != "Pow")
VERIFIERS["BitShift"] = _broadcasting("X", "Y")


@verifier("Where")
def where(n: Node):
    _broadcasting("condition", "X", "Y", same_type=False)(n)
    n.same_dtype("X", "Y")
    if n.dtype("condition") not in (None, np.dtype(bool)):
        n.fail(f"condition has element type {n.dtype('condition')}; it must be bool")


@verifier("PRelu")
def prelu(n: Node):
    x, slope = n.shape("X"), n.shape("slope")
    if x is not None and slope is not None and not broadcasts_to(slope, x):
        n.fail(f"slope of shape {fmt(slope)} does not broadcast to X {fmt(x)}")


@verifier("Clip")
def clip(n: Node):
    for name in ("min", "max"):
        s = n.shape(name)
        if s is not None and _known(*s) and math.prod(s) != 1:
            n.fail(f"{name} has shape {fmt(s)}; it must be a scalar")


def _quant(scale: str, zero: str, data: str):
    """QuantizeLinear / DequantizeLinear: a per-tensor scale has one element, a per-axis one
    is 1-D along `axis`; the zero point has the scale's shape (blocked scales: not checked)."""

    def check(n: Node):
        x, s, z = n.shape(data), n.shape(scale), n.shape(zero)
        if x is None or s is None or not _known(*x, *s):
            return
        if int(n.attrs.get("block_size", 0)) == 0 and math.prod(s) != 1:
            axis = n.axis(n.attrs.get("axis", 1), len(x))
            if len(s) != 1 or s[0] != x[axis]:
                n.fail(
                    f"{scale} has shape {fmt(s)}: a per-axis scale must be 1-D of length {x[axis]} "
                    f"(axis {axis} of {data} {fmt(x)})"
                )
        if z is not None and _known(*z) and z != s and not math.prod(z) == 1 == math.prod(s):
            n.fail(f"{zero} has shape {fmt(z)} but {scale} has shape {fmt(s)}")

    return check


VERIFIERS["QuantizeLinear"] = _quant("y_scale", "y_zero_point", "x")
VERIFIERS["DequantizeLinear"] = _quant("x_scale", "x_zero_point", "x")


@verifier("Trilu")
def trilu(n: Node):
    n.rank_at_least("input", 2)


@verifier("EyeLike")
def eye_like(n: Node):
    s = n.shape("input")
    if s is not None and len(s) != 2:
        n.fail(f"input has shape {fmt(s)}; EyeLike takes a matrix (rank 2)")


# ---- views --------------------------------------------------------------------------------


@verifier("Reshape")
def reshape(n: Node):
    x, out = n.shape("data"), n.out
    if x is None:
        return
    value = n.value("shape")
    if value is not None:
        shape = [int(d) for d in np.asarray(value).reshape(-1)]
        if shape.count(-1) > 1:
            n.fail(f"shape {shape} has more than one -1")
        if any(d < -1 for d in shape):
            n.fail(f"shape {shape} has a negative size")
        allowzero = int(n.attrs.get("allowzero", 0))
        if allowzero and 0 in shape and -1 in shape:
            n.fail(f"shape {shape} has both 0 and -1 with allowzero=1")
        if not allowzero and len([i for i, d in enumerate(shape) if d == 0 and i >= len(x)]):
            n.fail(f"shape {shape} copies a dimension (0) that data {fmt(x)} does not have")
        dims = [x[i] if d == 0 and not allowzero else d for i, d in enumerate(shape)]
        if _known(*x) and _known(*dims):
            total, rest = math.prod(x), math.prod(d for d in dims if d != -1)
            if -1 in dims:
                if rest == 0 or total % rest:
                    n.fail(f"data {fmt(x)} has {total} elements, which shape {shape} cannot hold")
            elif rest != total:
                n.fail(f"data {fmt(x)} has {total} elements but shape {shape} holds {rest}")
    if out is not None and _known(*x, *out) and math.prod(x) != math.prod(out):
        n.fail(f"data {fmt(x)} has {math.prod(x)} elements but the result {fmt(out)} has {math.prod(out)}")


@verifier("Flatten")
def flatten(n: Node):
    x = n.shape("input")
    if x is not None:
        n.axis(n.attrs.get("axis", 1), len(x), extra=1)


@verifier("Transpose")
def transpose(n: Node):
    x, perm = n.shape("data"), n.attrs.get("perm")
    if x is not None and perm is not None and sorted(perm) != list(range(len(x))):
        n.fail(f"perm {perm} is not a permutation of the {len(x)} axes of data {fmt(x)}")


@verifier("Squeeze")
def squeeze(n: Node):
    x = n.shape("data")
    if x is None:
        return
    for a in _axes(n, n.ints("axes"), len(x)) or ():
        if x[a] not in (None, 1):
            n.fail(f"axis {a} of data {fmt(x)} has size {x[a]}; only size-1 axes can be squeezed")


@verifier("Unsqueeze")
def unsqueeze(n: Node):
    x, axes = n.shape("data"), n.ints("axes")
    if x is not None and axes is not None:
        _axes(n, axes, len(x) + len(axes))


@verifier("Concat")
def concat(n: Node):
    a, b = n.shape("head"), n.shape("tail")
    if a is None or b is None:
        return
    if len(a) != len(b):
        n.fail(f"inputs of rank {len(a)} {fmt(a)} and {len(b)} {fmt(b)}: all inputs must have one rank")
    axis = n.axis(n.attrs.get("axis"), len(a))
    for i, (p, q) in enumerate(zip(a, b)):
        if i != axis and _known(p, q) and p != q:
            n.fail(f"inputs {fmt(a)} and {fmt(b)} differ in dimension {i}, which is not the axis {axis}")
    n.same_dtype("head", "tail")


def _index_range(n: Node, indices: np.ndarray, size: int | None, axis: int, data) -> None:
    if size is None or indices.size == 0:
        return
    bad = (indices < -size) | (indices >= size)
    if bad.any():
        first = int(indices[bad].reshape(-1)[0])
        n.fail(
            f"constant index {first} is out of range [{-size}, {size - 1}] for axis {axis} of data {fmt(data)} "
            f"({int(bad.sum())} of {indices.size} indices out of range)"
        )


@verifier("Gather")
def gather(n: Node):
    x = n.shape("data")
    if x is None:
        return
    if not x:
        n.fail("data is a scalar; Gather needs rank 1 or more")
    axis = n.axis(n.attrs.get("axis", 0), len(x))
    if n.dtype("indices") not in (None, np.dtype(np.int32), np.dtype(np.int64)):
        n.fail(f"indices have element type {n.dtype('indices')}; they must be int32 or int64")
    idx = n.value("indices")
    if idx is not None:
        _index_range(n, np.asarray(idx), x[axis], axis, x)


@verifier("GatherElements")
def gather_elements(n: Node):
    x, i = n.shape("data"), n.shape("indices")
    if x is None or i is None:
        return
    if len(x) != len(i):
        n.fail(f"indices {fmt(i)} and data {fmt(x)} must have one rank")
    axis = n.axis(n.attrs.get("axis", 0), len(x))
    for d, (p, q) in enumerate(zip(i, x)):
        if d != axis and _known(p, q) and p > q:
            n.fail(f"indices {fmt(i)} are larger than data {fmt(x)} in dimension {d}")
    idx = n.value("indices")
    if idx is not None:
        _index_range(n, np.asarray(idx), x[axis], axis, x)


def _int_indices(n: Node, name: str = "indices") -> None:
    if n.dtype(name) not in (None, np.dtype(np.int32), np.dtype(np.int64)):
        n.fail(f"{name} have element type {n.dtype(name)}; they must be int32 or int64")


@verifier("ScatterElements")
def scatter_elements(n: Node):
    x, i, u = n.shape("data"), n.shape("indices"), n.shape("updates")
    _int_indices(n)
    if n.attrs.get("reduction", "none") not in ("none", "add", "mul", "max", "min"):
        n.fail(f"reduction {n.attrs['reduction']!r} is not none, add, mul, max or min")
    if x is None or i is None:
        return
    if len(x) != len(i) or (u is not None and len(u) != len(i)):
        n.fail(f"data {fmt(x)}, indices {fmt(i)} and updates {fmt(u)} must have one rank")
    if u is not None and any(_known(p, q) and p != q for p, q in zip(i, u)):
        n.fail(f"updates {fmt(u)} must have the shape of indices {fmt(i)}")
    axis = n.axis(n.attrs.get("axis", 0), len(x))
    for d, (p, q) in enumerate(zip(i, x)):
        if d != axis and _known(p, q) and p > q:
            n.fail(f"indices {fmt(i)} are larger than data {fmt(x)} in dimension {d}")
    idx = n.value("indices")
    if idx is not None:
        _index_range(n, np.asarray(idx), x[axis], axis, x)


def _index_tuples(n: Node, x, i, batch_dims: int) -> None:
    """GatherND's and ScatterND's indices: the last axis holds tuples of k <= rank - batch_dims
    coordinates, each in its axis's range where the indices are constants."""
    if not i or not isinstance(i[-1], int):
        n.fail(f"indices {fmt(i)} need a static last axis (the length of each index tuple)")
    k = i[-1]
    if k < 1 or k > len(x) - batch_dims:
        n.fail(f"index tuples of length {k} do not fit data {fmt(x)} after {batch_dims} batch dims")
    idx = n.value("indices")
    if idx is not None:
        idx = np.asarray(idx)
        for j in range(k):
            _index_range(n, idx[..., j], x[batch_dims + j], batch_dims + j, x)


@verifier("ScatterND")
def scatter_nd(n: Node):
    x, i, u = n.shape("data"), n.shape("indices"), n.shape("updates")
    _int_indices(n)
    if n.attrs.get("reduction", "none") not in ("none", "add", "mul", "max", "min"):
        n.fail(f"reduction {n.attrs['reduction']!r} is not none, add, mul, max or min")
    if x is None or i is None:
        return
    _index_tuples(n, x, i, 0)
    want = list(i[:-1]) + list(x[i[-1] :])
    if u is not None and (len(u) != len(want) or any(_known(p, q) and p != q for p, q in zip(u, want))):
        n.fail(f"updates {fmt(u)} must have shape {fmt(want)} (indices' leading axes, then data's tail)")


@verifier("GatherND")
def gather_nd(n: Node):
    x, i = n.shape("data"), n.shape("indices")
    _int_indices(n)
    if x is None or i is None:
        return
    bd = n.attrs.get("batch_dims", 0)
    if bd < 0 or bd >= min(len(x), len(i)):
        n.fail(f"batch_dims {bd} must be below the ranks of data {fmt(x)} and indices {fmt(i)}")
    if any(_known(p, q) and p != q for p, q in zip(x[:bd], i[:bd])):
        n.fail(f"data {fmt(x)} and indices {fmt(i)} differ in their first {bd} (batch) dims")
    _index_tuples(n, x, i, bd)


@verifier("TensorScatter")
def tensor_scatter(n: Node):
    c, u, w = n.shape("past_cache"), n.shape("update"), n.shape("write_indices")
    if n.attrs.get("mode", "linear") not in ("linear", "circular"):
        n.fail(f"mode {n.attrs['mode']!r} is not linear or circular")
    _int_indices(n, "write_indices")
    if c is None or u is None:
        return
    if len(c) != len(u):
        n.fail(f"update {fmt(u)} and past_cache {fmt(c)} must have one rank")
    axis = n.axis(n.attrs.get("axis", -2), len(c))
    if axis == 0:
        n.fail("axis 0 is the batch axis; the sequence axis must be another")
    for d, (p, q) in enumerate(zip(u, c)):
        if _known(p, q) and (p > q if d == axis else p != q):
            n.fail(f"update {fmt(u)} does not fit past_cache {fmt(c)} in dimension {d}")
    if w is not None and (len(w) != 1 or (_known(w[0], c[0]) and w[0] != c[0])):
        n.fail(f"write_indices {fmt(w)} must be one index per batch row of past_cache {fmt(c)}")


@verifier("Expand")
def expand(n: Node):
    x, shape = n.shape("input"), n.ints("shape")
    if x is not None and shape is not None and broadcast(x, shape) is None:
        n.fail(f"input {fmt(x)} does not broadcast with shape {shape}")


@verifier("Tile")
def tile(n: Node):
    x, repeats = n.shape("input"), n.ints("repeats")
    if x is None or repeats is None:
        return
    if len(repeats) != len(x):
        n.fail(f"repeats {repeats} has {len(repeats)} entries for the {len(x)} axes of input {fmt(x)}")
    if any(r < 0 for r in repeats):
        n.fail(f"repeats {repeats} must not be negative")


@verifier("Slice")
def slice_(n: Node):
    x = n.shape("data")
    if x is None:
        return
    lists = {k: n.ints(k) for k in ("starts", "ends", "axes", "steps")}
    lengths = {k: len(v) for k, v in lists.items() if v is not None and n.attrs.get(k) is None}
    if len(set(lengths.values())) > 1:
        n.fail(
            "starts, ends, axes and steps must have one length (" + ", ".join(f"{k} {lists[k]}" for k in lengths) + ")"
        )
    if lists["axes"] is not None:
        _axes(n, lists["axes"], len(x))
    if lists["steps"] is not None and 0 in lists["steps"]:
        n.fail(f"steps {lists['steps']} must not be 0")


@verifier("Pad")
def pad(n: Node):
    x, pads = n.shape("data"), n.ints("pads")
    if x is None or pads is None:
        return
    axes = n.ints("axes")
    axes = _axes(n, axes, len(x)) if axes is not None else list(range(len(x)))
    if len(pads) != 2 * len(axes):
        n.fail(f"pads {pads} has {len(pads)} entries; {len(axes)} padded axes need {2 * len(axes)}")
    if n.attrs.get("mode", "constant") not in ("constant", "reflect", "edge", "wrap"):
        n.fail(f"mode {n.attrs.get('mode')!r} is not one of constant, reflect, edge, wrap")


@verifier("DepthToSpace", "SpaceToDepth")
def depth_space(n: Node):
    x = n.shape("input")
    b = n.attrs.get("blocksize")
    if x is None or b is None:
        return
    if len(x) != 4:
        n.fail(f"input has shape {fmt(x)}; {n.type} takes N x C x H x W")
    if b < 1:
        n.fail(f"blocksize {b} must be 1 or more")
    if n.type == "DepthToSpace" and x[1] is not None and x[1] % (b * b):
        n.fail(f"the {x[1]} channels are not a multiple of blocksize^2 = {b * b}")
    if n.type == "SpaceToDepth" and any(d is not None and d % b for d in x[2:]):
        n.fail(f"the spatial sizes {fmt(x[2:])} are not multiples of blocksize {b}")


@verifier("ReverseSequence")
def reverse_sequence(n: Node):
    x = n.rank_at_least("input", 2)
    if x is None:
        return
    batch, time = int(n.attrs.get("batch_axis", 1)), int(n.attrs.get("time_axis", 0))
    if {batch, time} != {0, 1}:
        n.fail(f"batch_axis {batch} and time_axis {time} must be 0 and 1, one each")
    n.vector("sequence_lens", x[batch], f"axis {batch} (batch_axis) of the input")


@verifier("GridSample")
def grid_sample(n: Node):
    x, g = n.rank_at_least("X", 3), n.shape("grid")
    if x is None or g is None:
        return
    if len(g) != len(x) or (g[-1] is not None and g[-1] != len(x) - 2):
        n.fail(f"grid has shape {fmt(g)}; for X {fmt(x)} it must be N x D1 x ... x {len(x) - 2}")
    if _known(g[0], x[0]) and g[0] != x[0]:
        n.fail(f"grid has batch size {g[0]} but X has {x[0]}")


@verifier("Resize")
def resize(n: Node):
    x = n.shape("X")
    if x is None:
        return
    axes = n.attrs.get("axes")
    count = len(axes) if axes else len(x)
    for name in ("scales", "sizes"):
        v = n.ints(name) if name == "sizes" else (n.attrs.get(name) if n.attrs.get(name) is not None else n.value(name))
        if v is not None and np.asarray(v).size not in (0, count):
            n.fail(f"{name} has {np.asarray(v).size} entries for {count} resized axes of X {fmt(x)}")
