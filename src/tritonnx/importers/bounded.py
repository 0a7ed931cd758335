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

  Unique-11    without `axis` (x of N <= MAX_BOUND elements, not bool): no sort. f(i) =
               min{i' : x[i'] == x[i]}; element i is a first occurrence when f(i) == i.
               Sorted, the output position of x[i] (inverse_indices) is how many first
               occurrences hold a smaller value, and output g is the first occurrence at
               position g; unsorted, it is how many first occurrences come before f(i),
               and the outputs are the first occurrences in order. counts[g] counts the
               elements at g. Y, indices and counts padded to N, bound N; inverse_indices
               is [N] and is not bound.

The positions cost N^2 comparisons (N^2 / BLOCK per program on the GPU): above MAX_BOUND
elements a NonZero, Compress or Unique stays a host step, as do Unique over an axis and a
NonZero, Compress or Unique over dynamic sizes (`tritonnx.runtime.program`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import onnx
from onnx import TensorProto, helper

from tritonnx.errors import UnsupportedModelError

DOMAIN = "tritonnx"
BIND = "Bind"
MAX_BOUND = 1 << 16  # elements: the largest NonZero, Compress or Unique input compiled to kernels


def is_bind(node: onnx.NodeProto) -> bool:
    return node.domain == DOMAIN and node.op_type == BIND


def constants(graph: onnx.GraphProto) -> set[str]:
    """The names of `graph` known at compile time: its initializers and Constant nodes' outputs."""
    made = {o for n in graph.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx") for o in n.output}
    return {t.name for t in graph.initializer} | made


def data_dependent_top_k(node: onnx.NodeProto, constant: set[str]) -> bool:
    """A TopK whose K is computed at run time (`constant`: what `constants` gives)."""
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


def _unique(b: _Builder, x: str, n: int, sort: int) -> tuple[str, str, str]:
    """(first [n], inverse [n], count [1]) of Unique-11 over x flattened (n elements): the
    position of each unique value's first occurrence, in the output's order (ascending by
    value with `sort`, else by first occurrence; past the count, n - 1), the output position
    of each element's value, and how many unique values there are. Each is one fused
    reduction over an [n, n] comparison, no sort: f(i) = min{i' : x[i'] == x[i]}, element i
    is a first occurrence when f(i) == i; sorted, the output position of x[i] is how many
    first occurrences hold a smaller value, and output g's first occurrence is the one at
    position g; unsorted, it is how many first occurrences come before f(i), and the first
    occurrences in order are the outputs (`_selected`)."""
    flat = b.node("Reshape", [x, b.ints([-1])], "flat")
    row = b.node("Unsqueeze", [flat, b.ints([0])], "row")  # [1, n]: x[i'] along axis 1
    col = b.node("Unsqueeze", [flat, b.ints([1])], "col")  # [n, 1]: x[i] along axis 0
    j = b.node("Range", [b.ints([0], True), b.ints([n], True), b.ints([1], True)], "j")
    j_row = b.node("Unsqueeze", [j, b.ints([0])], "jrow")
    j_col = b.node("Unsqueeze", [j, b.ints([1])], "jcol")
    none = b.ints([n], True)
    same = b.node("Equal", [row, col], "same")
    f = b.node("ReduceMin", [b.node("Where", [same, j_row, none], "at"), b.ints([1])], "f", keepdims=0)
    is_first = b.node("Equal", [f, j], "isfirst")
    count = b.node(
        "ReduceSum", [b.node("Cast", [is_first], "n", to=TensorProto.INT64), b.ints([0])], "count", keepdims=1
    )
    first_row = b.node("Unsqueeze", [is_first, b.ints([0])], "firstrow")  # [1, n]: F[i']

    def how_many(cond: str, what: str) -> str:  # sum over axis 1 of F[i'] & cond, per row
        both = b.node("And", [first_row, cond], what)
        return b.node("ReduceSum", [b.node("Cast", [both], what, to=TensorProto.INT64), b.ints([1])], what, keepdims=0)

    if sort:
        inverse = how_many(b.node("Less", [row, col], "less"), "inverse")
        here = b.node("Equal", [b.node("Unsqueeze", [inverse, b.ints([0])], "invrow"), j_col], "here")
        hit = b.node("And", [first_row, here], "hit")
        at = b.node("ReduceMin", [b.node("Where", [hit, j_row, none], "at"), b.ints([1])], "first", keepdims=0)
        first = b.node("Min", [at, b.ints([n - 1], True)], "first")
    else:
        inverse = how_many(b.node("Less", [j_row, b.node("Unsqueeze", [f, b.ints([1])], "fcol")], "before"), "inverse")
        first, _ = _selected(b, is_first, n)
    return first, inverse, count


def _counts(b: _Builder, inverse: str, n: int) -> str:
    """counts [n] int64: how many elements have output position g, for each g."""
    j = b.node("Range", [b.ints([0], True), b.ints([n], True), b.ints([1], True)], "g")
    hit = b.node(
        "Equal",
        [b.node("Unsqueeze", [inverse, b.ints([0])], "invrow"), b.node("Unsqueeze", [j, b.ints([1])], "g")],
        "hit",
    )
    return b.node("ReduceSum", [b.node("Cast", [hit], "hit", to=TensorProto.INT64), b.ints([1])], "counts", keepdims=0)


def _mask(b: _Builder, x: str, elem: int) -> str:
    if elem == TensorProto.BOOL:
        return x
    return b.node("Not", [b.node("Equal", [x, b.zero(elem)], "eq")], "mask")


def rewrite(graph: onnx.GraphProto, name_of: dict[int, str], reads: Callable[[onnx.NodeProto], set[str]]) -> int:
    """Rewrites in place each NonZero, Compress and Unique of static input sizes and each
    TopK with a run-time K of `graph` (a prepared, shape-inferred top-level graph) into its bounded
    kernels and a Bind node, as the module says; `name_of` maps a node's position to its
    name; `reads(node)` the names a node reads (its subgraphs' included). The Bind nodes carry `axis`, `bound` and `sync` (what the sync point reads). Adds
    value infos for the padded results and counts. Returns how many nodes it rewrote."""
    infos = {vi.name: vi for vi in list(graph.input) + list(graph.value_info) + list(graph.output)}
    constant = constants(graph)

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
            if n < 1:  # an empty condition: nothing to bound
                out.append(node)
                continue
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
            parts = list(zip(outs, (elem(node.input[0]), TensorProto.INT64), [shape] * 2))
            count, sync = node.input[1], f"reads K from {node.input[1]!r}"
        elif (
            standard
            and node.op_type == "Unique"
            and not any(a.name == "axis" for a in node.attribute)
            and (shape := static(node.input[0]))
            and math.prod(shape) <= MAX_BOUND
            and elem(node.input[0]) not in (TensorProto.BOOL, TensorProto.STRING)
        ):
            n = math.prod(shape)
            attrs = {a.name: a.i for a in node.attribute}
            first, inverse, count = _unique(b, node.input[0], n, attrs.get("sorted", 1))
            values = b.node("Gather", [b.node("Reshape", [node.input[0], b.ints([-1])], "flat"), first], "values")
            counts = _counts(b, inverse, n)
            outputs = list(node.output) + [""] * (4 - len(node.output))
            if outputs[2]:
                b.nodes.append(helper.make_node("Identity", [inverse], [outputs[2]], name=f"{name}.inverse"))
            parts = [
                (values, elem(node.input[0]), [n]),
                (first, TensorProto.INT64, [n]),
                ("", TensorProto.INT64, [n]),  # inverse_indices: one per element, not bound
                (counts, TensorProto.INT64, [n]),
            ][: len(node.output)]
            axis, bound, sync = 0, n, "reads its count of unique values"
        else:
            if data_dependent_top_k(node, constant):  # left as it is, it would make a program again
                raise UnsupportedModelError(
                    f"node {name} (TopK): its K is computed at run time and its input X has no static shape; "
                    "tritonnx bounds a run-time K by X's static size along the axis."
                )
            out.append(node)
            continue
        out.extend(b.nodes)
        graph.initializer.extend(b.inits)
        new_infos += [helper.make_tensor_value_info(p, e, s) for p, e, s in parts if p]
        new_infos.append(helper.make_tensor_value_info(count, TensorProto.INT64, [1]))
        results = [o if p else "" for o, (p, _, _) in zip(node.output, parts)]  # unused or not bound: ""
        bind = helper.make_node(
            BIND,
            [p for p, _, _ in parts] + [count],
            results,
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
        made = {r for r in bind.output if r}
        at = next((k for k, n in enumerate(out) if made & reads(n)), len(out))
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
