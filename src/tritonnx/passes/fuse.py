"""fuse: partitions the graph into fusion groups, one Triton kernel each.

Rules, in topological order:
- Conv, Gemm, MatMul (dot anchors) and MaxPool, AveragePool, GlobalAveragePool, Softmax
  (reduction anchors) start a group.
- A pointwise op (Relu, Clip, Add, Mul, Where, Cast, ...: `dialects/ops.py`) joins the group of the
  producer whose value it alone consumes and whose shape it keeps (an epilogue: bias,
  activation, residual add); its other operands are loaded by the kernel. Otherwise it
  starts a pointwise group.
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


def _partition(block: ir.Block) -> None:
    next_id = 0
    tail: dict[int, ir.Operation] = {}  # group -> its last op (the group's output)
    for op in ops(block):
        name = op.name
        if name in DOT or name in REDUCE:
            _mark(op, next_id, "anchor")
            tail[next_id] = op
            next_id += 1
        elif KIND.get(name) == "stencil":
            _mark(op, next_id, "stencil: reads neighbouring elements of its input, so the input is materialized")
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
                        _mark(r, g, f"reshape of {node_name(src)}'s result: same element order")
                    _mark(op, g, f"epilogue of {node_name(src)}{how}: sole consumer, same size")
                    tail[g] = op
                    joined = True
                    break
            if not joined:
                _mark(op, next_id, "pointwise root: no single-use producer to join")
                tail[next_id] = op
                next_id += 1
        elif name in VIEWS:
            src = producer(op.operands[0])
            g = _group(src)
            only_returned = all(use.owner.operation.name == "func.return" for use in op.results[0].uses)
            if (name == "tnx.reshape" and only_returned and g is not None and tail[g] == src
                    and len(list(op.operands[0].uses)) == 1):
                _mark(op, g, "reshape of the group's result: stored in place (same element order)")
                tail[g] = op
            elif any(use.owner.operation.name == "func.return" for use in op.results[0].uses):
                _mark(op, next_id, "view that is a graph output: materialized by a copy kernel")
                tail[next_id] = op
                next_id += 1
        elif name.startswith("tnx.") and name != "tnx.constant":
            kind = onnx_op_type(name)
            raise CompileError(f"node {node_name(op)} ({kind}) has no kernel: tritonnx computes {kind} "
                               "only when its inputs are constants, so that it folds away at compile time.")
