"""Ops whose output size depends on the values, as kernels into a buffer of static upper
bound and a count (the design TensorRT documents for data-dependent shapes).

Each such node of a program's graph (`tritonnx.compiler.program`) becomes ONNX nodes that
the normal pipeline fuses and tiles, writing a padded result whose size along one axis is
the static upper bound, and a count; then a `tritonnx.Bind` node, which the program runs as
a `bind` step: it reads the count from the device (a sync point), checks it against the
bound, and passes on the first `count` entries along that axis. The steps after it take the
count as a dynamic size (a kernel argument). The Bind node sits just before the first node
that reads the result, so everything that does not need the count runs before the read.

  NonZero-13   x [S] (static, rank >= 1, N = prod(S) <= MAX_BOUND): m = (x != 0)
               flattened, incl = CumSum(m), count = ReduceSum(m); output column k holds the
               coordinates of the (k+1)-th nonzero element, #{i : incl[i] <= k} (one fused
               reduction per column), the columns past the count the last element's.
               Padded [rank, N], bound N.
  Compress-11  the same positions of the condition's first n = min(len, size) entries,
               then a Gather of those slices: padded with n slices, bound n.
  TopK-11      with K computed at run time: TopK with K = the axis' size (all of it, sorted
               as the spec orders it), then the first K (read from the K tensor, a sync
               point) are bound: a full sort's first K are the top K.

The positions cost N^2 comparisons (N^2 / BLOCK per program on the GPU): above MAX_BOUND
elements a NonZero or Compress stays a host step, as do Unique (a sort and a grouping) and
a NonZero or Compress over dynamic sizes (`tritonnx.runtime.program`).
"""

from __future__ import annotations

import math
import re

import onnx
from onnx import TensorProto, helper

DOMAIN = "tritonnx"
BIND = "Bind"
MAX_BOUND = 1 << 16  # elements: the largest NonZero or Compress input compiled to kernels


def is_bind(node: onnx.NodeProto) -> bool:
    return node.domain == DOMAIN and node.op_type == BIND


def data_dependent_top_k(node: onnx.NodeProto, constant: set[str]) -> bool:
    """A TopK whose K is computed at run time (not an initializer after constant folding)."""
    return (
        node.domain in ("", "ai.onnx")
        and node.op_type == "TopK"
        and len(node.input) > 1
        and bool(node.input[1])
        and node.input[1] not in constant
    )


class _Builder:
    def __init__(self, name: str):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def value(self, what: str) -> str:
        self.n += 1
        return f"{self.name}.{what}{self.n}"

    def node(self, op: str, ins: list[str], what: str, **attrs) -> str:
        out = self.value(what)
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def ints(self, values: list[int], scalar: bool = False) -> str:
        name = self.value("c")
        self.inits.append(helper.make_tensor(name, TensorProto.INT64, [] if scalar else [len(values)], values))
        return name

    def zero(self, elem: int) -> str:
        name = self.value("zero")
        self.inits.append(helper.make_tensor(name, elem, [], [False] if elem == TensorProto.BOOL else [0]))
        return name


def _selected(b: _Builder, mask: str, n: int) -> tuple[str, str]:
    """(pos, count) for a bool mask [n]: pos [n] int64 the positions where the mask holds, in
    order, then n - 1 (padding, a valid position); count [1] int64 how many hold. With
    incl = CumSum(mask), the (k+1)-th true position is #{i : incl[i] <= k}: one reduction per
    k over the running count (a [n, n] comparison the fused reduction never stores)."""
    m = b.node("Cast", [mask], "m", to=TensorProto.INT64)
    incl = b.node("CumSum", [m, b.ints([0], scalar=True)], "incl")
    count = b.node("ReduceSum", [m, b.ints([0])], "count", keepdims=1)
    k = b.node("Range", [b.ints([0], True), b.ints([n], True), b.ints([1], True)], "k")
    below = b.node(
        "LessOrEqual",
        [b.node("Unsqueeze", [incl, b.ints([0])], "row"), b.node("Unsqueeze", [k, b.ints([1])], "col")],
        "le",
    )
    before = b.node("ReduceSum", [b.node("Cast", [below], "le", to=TensorProto.INT64), b.ints([1])], "pos", keepdims=0)
    return b.node("Min", [before, b.ints([n - 1], True)], "pos"), count


def _mask(b: _Builder, x: str, elem: int) -> str:
    if elem == TensorProto.BOOL:
        return x
    return b.node("Not", [b.node("Equal", [x, b.zero(elem)], "eq")], "mask")


def rewrite(graph: onnx.GraphProto, name_of: dict[int, str]) -> int:
    """Rewrites in place each NonZero and Compress of static input sizes and each TopK with
    a run-time K of `graph` (a prepared, shape-inferred top-level graph) into its bounded
    kernels and a Bind node, as the module says; `name_of` maps a node's position to its
    name. The Bind nodes carry `axis`, `bound` and `sync` (what the sync point reads). Adds
    value infos for the padded results and counts. Returns how many nodes it rewrote."""
    infos = {vi.name: vi for vi in list(graph.input) + list(graph.value_info) + list(graph.output)}
    constant = {t.name for t in graph.initializer}

    def static(name: str) -> list[int] | None:
        vi = infos.get(name)
        if vi is None or vi.type.WhichOneof("value") != "tensor_type" or not vi.type.tensor_type.HasField("shape"):
            return None
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        return dims if all(d > 0 for d in dims) else None

    def elem(name: str) -> int:
        return infos[name].type.tensor_type.elem_type

    out: list[onnx.NodeProto] = []
    binds: list[tuple[onnx.NodeProto, list[tuple[str, int, list[int]]]]] = []
    new_infos: list[onnx.ValueInfoProto] = []
    for i, node in enumerate(graph.node):
        name = name_of[i]
        standard = node.domain in ("", "ai.onnx")
        b = _Builder(name)
        if (
            standard
            and node.op_type == "NonZero"
            and (shape := static(node.input[0]))
            and 1 <= math.prod(shape) <= MAX_BOUND
        ):
            n = math.prod(shape)
            flat = b.node("Reshape", [node.input[0], b.ints([-1])], "flat")
            mask = _mask(b, flat, elem(node.input[0]))
            pos, count = _selected(b, mask, n)
            coords = []
            for d in range(len(shape)):
                stride = math.prod(shape[d + 1 :])
                c = b.node("Div", [pos, b.ints([stride], True)], "q") if stride > 1 else pos
                c = b.node("Mod", [c, b.ints([shape[d]], True)], "c") if d > 0 else c
                coords.append(b.node("Unsqueeze", [c, b.ints([0])], "u"))
            padded = coords[0] if len(coords) == 1 else b.node("Concat", coords, "padded", axis=0)
            parts: list[tuple[str, int, list[int]]] = [(padded, TensorProto.INT64, [len(shape), n])]
            axis, bound, sync = 1, n, "reads its count of nonzero elements"
        elif (
            standard
            and node.op_type == "Compress"
            and (shape := static(node.input[0]))
            and static(node.input[1])
            and math.prod(shape) <= MAX_BOUND
        ):
            attrs = {a.name: a.i for a in node.attribute}
            x = node.input[0]
            if "axis" in attrs:
                axis = attrs["axis"] % len(shape)
            else:
                x, axis, shape = b.node("Reshape", [x, b.ints([-1])], "flat"), 0, [math.prod(shape)]
            (length,) = static(node.input[1]) or [0]
            n = min(length, shape[axis])
            cond = node.input[1]
            if length > n:
                cond = b.node("Slice", [cond, b.ints([0]), b.ints([n]), b.ints([0])], "cond")
            mask = (
                cond if elem(node.input[1]) == TensorProto.BOOL else b.node("Cast", [cond], "mask", to=TensorProto.BOOL)
            )
            pos, count = _selected(b, mask, n)
            padded = b.node("Gather", [x, pos], "padded", axis=axis)
            parts = [(padded, elem(node.input[0]), [*shape[:axis], n, *shape[axis + 1 :]])]
            bound, sync = n, "reads its count of slices kept"
        elif data_dependent_top_k(node, constant) and (shape := static(node.input[0])):
            attrs = {a.name: a.i for a in node.attribute}
            axis = attrs.get("axis", -1) % len(shape)
            bound = shape[axis]
            outs = [b.value(w) if o else "" for w, o in zip(("values", "indices"), node.output)]
            full = helper.make_node("TopK", [node.input[0], b.ints([bound])], outs, name=f"{name}.all")
            full.attribute.extend(node.attribute)
            b.nodes.append(full)
            parts = [(o, e, shape) for o, e in zip(outs, (elem(node.input[0]), TensorProto.INT64)) if o]
            count, sync = node.input[1], f"reads K from {node.input[1]!r}"
        else:
            out.append(node)
            continue
        out.extend(b.nodes)
        graph.initializer.extend(b.inits)
        new_infos += [helper.make_tensor_value_info(p, e, s) for p, e, s in parts]
        new_infos.append(helper.make_tensor_value_info(count, TensorProto.INT64, [1]))
        if node.op_type == "TopK":  # an unused output has no padded value either
            parts = [(o, e, s) for o, e, s in zip(outs, (elem(node.input[0]), TensorProto.INT64), [shape] * 2)]
        bind = helper.make_node(
            BIND,
            [p for p, _, _ in parts] + [count],
            list(node.output),
            name=name,
            domain=DOMAIN,
            axis=axis,
            bound=bound,
            sync=sync,
        )
        binds.append((bind, parts))
        out.append(bind)
    if not binds:
        return 0
    graph.value_info.extend(v for v in new_infos if v.name not in infos)
    for bind, parts in binds:
        # just before the first node that reads one of its results
        out.remove(bind)
        results = {r for r in bind.output if r}
        at = next((k for k, n in enumerate(out) if results & _reads(n)), len(out))
        out.insert(at, bind)
        # the results: the bound's axis a size of its own (a symbol), the others as they are
        symbol = "n_" + re.sub(r"\W", "_", bind.name)
        axis = next(a.i for a in bind.attribute if a.name == "axis")
        for (_, e, dims), result in zip(parts, bind.output):
            if not result:
                continue
            sized: list[int | str] = list(dims)
            sized[axis] = symbol
            typed = helper.make_tensor_value_info(result, e, sized)
            known = [vi for vi in list(graph.value_info) + list(graph.output) if vi.name == result]
            for vi in known:
                vi.type.CopyFrom(typed.type)
            if not known:
                graph.value_info.append(typed)
    del graph.node[:]
    graph.node.extend(out)
    return len(binds)


def _reads(node: onnx.NodeProto) -> set[str]:
    """The names a node reads: its inputs and what its subgraphs read."""
    names = {i for i in node.input if i}
    for a in node.attribute:
        for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
            for n in g.node:
                names |= _reads(n)
    return names
