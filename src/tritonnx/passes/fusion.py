"""What the fusion passes (split-k, merge-siblings, match-attention, partition,
multi-output) share: the fusion codes and the `Group` bookkeeping. The compiler runs the
five passes one by one (`compiler/pipeline.py`), each with its own dump;
`tritonnx-opt --pass-pipeline=fuse` is a shorthand for the five in order.

The passes talk through the IR only:
- `tnx.split_k`, `tnx.merged` (prose): an op that split-k or merge-siblings created.
- `tnx.attention` (unit, on the Softmax) and `tnx.attention_id` (i64, on every op of one
  matched attention): match-attention's finding, which partition turns into a group and
  removes.
- `tnx.group` (i64): the fusion group; `tnx.fusion`: a stable code saying why the op is in
  its group (`FUSION` lists them); `tnx.why`: the same in prose, for people. Tests check
  the code; the prose may improve freely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlir import ir

from tritonnx.dialects.builders import shape_of, to_attr
from tritonnx.dialects.ops import DOT, POINTWISE, REDUCE, VIEWS  # noqa: F401 - the op classes the passes read
from tritonnx.passes import ops
from tritonnx.passes.kernel_info import node_name  # noqa: F401

NO_EPILOGUE = ("tnx.top_k", "tnx.lstm", "tnx.gru", "tnx.rnn")  # anchors that store as they go

# `tnx.fusion` codes: why an op is in its group
FUSION = {
    "anchor": "starts a group: a Conv, Gemm or MatMul, a pool, reduction, normalization or Softmax",
    "stencil": "starts a group: reads neighbouring elements of its input (LRN), which is materialized",
    "pointwise": "starts a pointwise group: no single-use producer to join",
    "copy": "starts a group: a view that is a graph output, materialized by a copy kernel",
    "epilogue": "computed on its producer's result before the kernel stores it (bias, activation, residual)",
    "prologue": "computed on the anchor's loads, never stored",
    "view": "a Reshape or index map inside a group (before an epilogue, after a prologue, or stored in place)",
    "branch": "a pointwise group merged into the group of its only reader",
    "generator": "computed from the sizes and scalars alone (Range, positions, masks), recomputed by its only reader",
    "attention": "part of a flash-attention kernel (scores, online Softmax, probabilities times V)",
    "multi_output": "a second output of the kernel that produces the value it reads",
}


def mark(op: ir.Operation, group: int, code: str, why: str) -> None:
    """Puts `op` in `group` with the `tnx.fusion` code `code` (a key of FUSION) and the
    prose `why`."""
    assert code in FUSION, code
    op.attributes["tnx.group"] = to_attr(group)
    op.attributes["tnx.fusion"] = to_attr(code)
    op.attributes["tnx.why"] = to_attr(why)


def group_of(op: ir.Operation | None) -> int | None:
    """The `tnx.group` of `op`, None for no op or an op in no group."""
    if op is None or "tnx.group" not in op.attributes:
        return None
    return ir.IntegerAttr(op.attributes["tnx.group"]).value


def fusion_of(op: ir.Operation) -> str | None:
    """The `tnx.fusion` code of `op`, None when it has none."""
    return ir.StringAttr(op.attributes["tnx.fusion"]).value if "tnx.fusion" in op.attributes else None


def nbytes(v: ir.Value) -> int:
    """Bytes of a static-shaped tensor value (sub-byte types count one byte)."""
    et = ir.RankedTensorType(v.type).element_type
    width = getattr(et, "width", 32)
    return math.prod(shape_of(v)) * max(1, width // 8)


@dataclass(eq=False)
class Group:
    """A fusion group being formed: its id (`tnx.group`), its kind (the `tnx.fusion` code of
    the op that started it: anchor, stencil, pointwise or copy), its members in the order
    they joined (the first started it) and its tail, the last op, whose value the kernel
    stores (multi-output adds further `outputs`)."""

    id: int
    kind: str
    members: list[ir.Operation]
    tail: ir.Operation
    outputs: list[ir.Value] = field(default_factory=list)

    @property
    def root(self) -> ir.Operation:
        return self.members[0]


def groups_of(block: ir.Block) -> dict[int, Group]:
    """The groups `partition` left in `block`, read back from the IR: members in block
    order, the group's starting op (code anchor, stencil, pointwise or copy) first, the tail
    the last member in block order (a kernel is called at its group's last op)."""
    by_id: dict[int, list[ir.Operation]] = {}
    for op in ops(block):
        g = group_of(op)
        if g is not None:
            by_id.setdefault(g, []).append(op)
    groups = {}
    starts = ("anchor", "stencil", "pointwise", "copy")
    for g, members in by_id.items():
        root = next((m for m in members if fusion_of(m) in starts), members[0])
        ordered = [root] + [m for m in members if m != root]
        groups[g] = Group(g, fusion_of(root) or "anchor", ordered, members[-1], [members[-1].results[0]])
    return groups
