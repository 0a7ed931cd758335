"""fuse: partitions the graph into fusion groups, one Triton kernel each.

Rules, in topological order:
- Conv, Gemm, MatMul (dot anchors) and MaxPool, AveragePool, GlobalAveragePool, Softmax
  (reduction anchors) start a group.
- A pointwise op (Relu, Clip, Add, Mul, Where, Cast, ...: `dialects/ops.py`) joins the group of the
  producer whose value it alone consumes and whose shape it keeps (an epilogue: bias,
  activation, residual add); its other operands are loaded by the kernel. Otherwise it
  starts a pointwise group.
- A pointwise group whose result only an anchor reads (Conv/Gemm/MatMul data or weights,
  a pool, reduction, normalization or Softmax input) becomes the anchor's prologue: it is
  computed on the anchor's loads, when its inputs weigh at most twice its output (so
  recomputing it per tile re-read costs no more than storing and loading it once).
- View ops (Reshape, Transpose, Concat, Slice, Pad, Expand, Tile, Gather, ...) join no group: they become index maps on the loads
  of every kernel that reads them. A Reshape of a group's result that is only a graph
  output joins the group (a reshape keeps element order, so the kernel stores in place);
  any other view that is a graph output gets a copy kernel.
Each op gets `tnx.group` (the group id) and `tnx.fusion` (why it is in that group).
"""
from __future__ import annotations

import math

from mlir import ir

from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.ops import KIND
from tritonnx.dialects.builders import producer, shape_of, to_attr
from tritonnx.errors import CompileError
from tritonnx.passes import functions, ops

NAME = "fuse"

DOT = tuple(n for n, k in KIND.items() if k == "dot")
REDUCE = tuple(n for n, k in KIND.items() if k == "reduce")
POINTWISE = tuple(n for n, k in KIND.items() if k == "pointwise")
VIEWS = tuple(n for n, k in KIND.items() if k == "view")  # index maps on loads
NO_EPILOGUE = ("tnx.top_k",)  # anchors that store as they go


def node_name(op: ir.Operation) -> str:
    loc = op.location
    return loc.name_str if loc.is_a_name() else op.name


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        if "sym_visibility" in fn.attributes:
            continue  # kernels are already outlined
        _partition(fn.regions[0].blocks[0])


def _mark(op: ir.Operation, group: int, reason: str) -> None:
    op.attributes["tnx.group"] = to_attr(group)
    op.attributes["tnx.fusion"] = to_attr(reason)


def _group(op: ir.Operation | None) -> int | None:
    if op is None or "tnx.group" not in op.attributes:
        return None
    return ir.IntegerAttr(op.attributes["tnx.group"]).value


def _nbytes(v: ir.Value) -> int:
    et = ir.RankedTensorType(v.type).element_type
    width = getattr(et, "width", 32)
    return math.prod(shape_of(v)) * max(1, width // 8)


def _prologue(anchor: ir.Operation, operand: ir.Value, members: dict, pointwise_groups: set,
              tail: dict) -> tuple[int, list[ir.Operation], str] | None:
    """The pointwise group that computes `operand` of `anchor` alone, to be evaluated on the
    anchor's loads instead of stored and loaded again: (group, views between, reason), or
    None. Cost rule: the group's inputs may weigh at most twice its output, so recomputing
    it on every (re-)read of a tile moves no more bytes than a round trip through memory."""
    views, v = [], operand
    while True:
        src = producer(v)
        if src is None or len(list(v.uses)) != 1:
            return None
        if src.name in VIEWS and _group(src) is None:
            views.append(src)
            v = src.operands[0]
            continue
        break
    g = _group(src)
    if g is None or g not in pointwise_groups or tail[g] != src:
        return None
    group_ops = members[g]
    inside = {r for m in group_ops for r in m.results}
    external, seen = 0, set()
    for m in group_ops:
        for r in m.results:
            if r != v and any(_group(u.owner.operation) != g for u in r.uses):
                return None  # a value of the group is used outside it
        for x in m.operands:
            if x not in inside and x not in seen:
                seen.add(x)
                src_x = producer(x)
                if src_x is None or src_x.name != "tnx.constant":
                    external += _nbytes(x)
    if external > 2 * _nbytes(v):
        return None
    return g, views, (f"prologue of {node_name(anchor)}: computed on its loads ({external} input bytes for "
                      f"{_nbytes(v)} output bytes, no round trip through memory)")


def _partition(block: ir.Block) -> None:
    next_id = 0
    tail: dict[int, ir.Operation] = {}  # group -> its last op (the group's output)
    members: dict[int, list[ir.Operation]] = {}
    pointwise_groups: set[int] = set()  # groups with no anchor: candidates for prologues

    def mark(op: ir.Operation, group: int, reason: str) -> None:
        _mark(op, group, reason)
        members.setdefault(group, []).append(op)
    for op in ops(block):
        name = op.name
        if name in DOT or name in REDUCE:
            mark(op, next_id, "anchor")
            data = list(op.operands[:2]) if name in DOT else [op.operands[0]]
            for value in data:
                found = _prologue(op, value, members, pointwise_groups, tail)
                if found is None:
                    continue
                g, views, reason = found
                for m in members.pop(g):
                    mark(m, next_id, reason)
                for view in views:
                    mark(view, next_id, f"index map between the prologue and {node_name(op)}")
                pointwise_groups.discard(g)
                del tail[g]
            tail[next_id] = op
            next_id += 1
        elif KIND.get(name) == "stencil":
            mark(op, next_id, "stencil: reads neighbouring elements of its input, so the input is materialized")
            tail[next_id] = op
            next_id += 1
        elif name in POINTWISE:
            joined = False
            for value in op.operands:
                src, through = producer(value), []
                while (src is not None and src.name == "tnx.reshape" and _group(src) is None
                       and len(list(src.results[0].uses)) == 1):  # a reshape keeps element order
                    through.append(src)
                    src = producer(src.operands[0])
                    value = through[-1].operands[0]
                g = _group(src)
                if (g is not None and tail[g] == src and len(list(value.uses)) == 1 and src.name not in NO_EPILOGUE
                        and math.prod(shape_of(value)) == math.prod(shape_of(op.results[0]))
                        and (through or shape_of(value) == shape_of(op.results[0]))):
                    how = " through a reshape" if through else ""
                    for r in through:
                        mark(r, g, f"reshape of {node_name(src)}'s result: same element order")
                    mark(op, g, f"epilogue of {node_name(src)}{how}: sole consumer, same size")
                    tail[g] = op
                    joined = True
                    break
            if not joined:
                mark(op, next_id, "pointwise root: no single-use producer to join")
                tail[next_id] = op
                pointwise_groups.add(next_id)
                next_id += 1
        elif name in VIEWS:
            src = producer(op.operands[0])
            g = _group(src)
            only_returned = all(use.owner.operation.name == "func.return" for use in op.results[0].uses)
            if (name == "tnx.reshape" and only_returned and g is not None and tail[g] == src
                    and len(list(op.operands[0].uses)) == 1):
                mark(op, g, "reshape of the group's result: stored in place (same element order)")
                tail[g] = op
            elif any(use.owner.operation.name == "func.return" for use in op.results[0].uses):
                mark(op, next_id, "view that is a graph output: materialized by a copy kernel")
                tail[next_id] = op
                next_id += 1
        elif name.startswith("tnx.") and name != "tnx.constant":
            kind = onnx_op_type(name)
            raise CompileError(f"node {node_name(op)} ({kind}) has no kernel: tritonnx computes {kind} "
                               "only when its inputs are constants, so that it folds away at compile time.")
