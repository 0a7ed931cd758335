"""partition: fusion groups, anchors with their prologues and epilogues, pointwise chains; views as index maps.

In block order:
- Conv, Gemm, MatMul (dot anchors) and MaxPool, AveragePool, GlobalAveragePool, Softmax,
  reductions, normalizations (reduction anchors) start a group; so does an attention that
  match-attention marked (`tnx.attention_id`), whose ops then all join it.
- A pointwise group whose result only an anchor reads (Conv/Gemm/MatMul data or weights,
  a pool, reduction, normalization or Softmax input) becomes the anchor's prologue: it is
  computed on the anchor's loads, when its inputs weigh at most twice its output (so
  recomputing it per tile re-read costs no more than storing and loading it once); three
  times for a reduction, normalization, Softmax or global pool, which reads its input at
  most twice (a row that does not fit one block is read again).
- A pointwise op (Relu, Clip, Add, Mul, Where, Cast, ...: `dialects/ops.py`) joins the group
  of the producer whose value it alone consumes and whose shape it keeps (an epilogue:
  bias, activation, residual add), also through Reshapes; its other operands are loaded by
  the kernel. Otherwise it starts a pointwise group. Pointwise groups whose only reader it
  is merge into its group (the branches of a decomposed Gelu become one kernel).
- A generator (a pointwise group that reads no tensor: Range, index arithmetic over the
  dynamic sizes, scalar constants; what a static compile folds to a constant, such as
  positions and masks over a dynamic sequence) merges into the group of its only reader,
  read directly or through views (a Gather's indices), at any shape: recomputing it costs
  no load. A Range with several readers is first cloned, one copy per reader.
- View ops (Reshape, Transpose, Concat, Slice, Pad, Expand, Tile, Gather, ...) join no
  group: they become index maps on the loads of every kernel that reads them. A Reshape of
  a group's result that is only a graph output joins the group (a reshape keeps element
  order, so the kernel stores in place); any other view that is a graph output gets a copy
  kernel.
- A stencil (LRN) starts a group of its own.
Each op of a group gets `tnx.group`, `tnx.fusion` (a code of `fusion.FUSION`) and `tnx.why`.
An op with no kernel (a tnx op that only folds) raises CompileError.
"""

from __future__ import annotations

import math

from mlir import ir

from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.builders import producer, shape_of
from tritonnx.dialects.ops import KIND
from tritonnx.errors import CompileError
from tritonnx.passes import functions, fusion, ops
from tritonnx.passes.fusion import Group, fusion_of, group_of, mark, nbytes, node_name

NAME = "partition"

# reduction anchors that read each input element at most twice (windowed pools re-read)
ROW_ANCHORS = tuple(n for n in fusion.REDUCE if n not in ("tnx.max_pool", "tnx.average_pool", "tnx.lp_pool"))


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        if "sym_visibility" in fn.attributes:
            continue  # kernels are already outlined
        block = fn.regions[0].blocks[0]
        _rematerialize_ranges(block)
        partition = _Partition()
        for op in ops(block):
            partition.visit(op)
        for op in ops(block):
            if "tnx.attention_id" in op.attributes:
                del op.attributes["tnx.attention_id"]  # now a group: the kernel body must not carry it


def _rematerialize_ranges(block: ir.Block) -> None:
    """A Range that reads only scalar constants and dynamic sizes (positions 0..seq-1), and
    the views of it, are cloned once per further reader, so that each copy can merge into
    its reader's kernel as a generator: recomputing a Range costs a multiply-add a lane, a
    kernel of its own a launch and a round trip through memory. Walks the block backwards,
    so that cloning a view gives its Range the readers it then clones for."""
    pure: set = set()
    for op in ops(block):
        small = all(
            (src := producer(x)) is not None
            and (src in pure or (src.name in ("tnx.constant", "tnx.sizes") and math.prod(shape_of(x)) <= 16))
            for x in op.operands
        )
        if small and (op.name == "tnx.range" or (op.name in fusion.VIEWS and producer(op.operands[0]) in pure)):
            pure.add(op)
    for op in reversed(ops(block)):
        if op not in pure:
            continue
        uses = [(u.owner.operation, u.operand_number) for u in op.results[0].uses]
        for owner, index in uses[1:]:
            copy = op.clone(ip=ir.InsertionPoint.after(op))
            owner.operands[index] = copy.results[0]


def _why(op: ir.Operation) -> str | None:
    return ir.StringAttr(op.attributes["tnx.why"]).value if "tnx.why" in op.attributes else None


class _Partition:
    """The groups of one block as they form, op by op in block order."""

    def __init__(self) -> None:
        self.groups: dict[int, Group] = {}  # the groups still standing, by id
        self.attention: dict[int, int] = {}  # tnx.attention_id -> its group's id
        self.next_id = 0

    def visit(self, op: ir.Operation) -> None:
        """Places `op` (or not: a view, a constant) by its kind."""
        name = op.name
        if "tnx.attention_id" in op.attributes:
            self.visit_attention(op)
        elif name in fusion.DOT or name in fusion.REDUCE:
            self.visit_anchor(op)
        elif KIND.get(name) == "stencil":
            self.start(op, "stencil", "stencil: reads neighbouring elements of its input, so the input is materialized")
        elif name in fusion.POINTWISE:
            self.visit_pointwise(op)
        elif name in fusion.VIEWS:
            self.visit_view(op)
        elif name.startswith("tnx.") and KIND.get(name) != "constant":
            kind = onnx_op_type(name)
            raise CompileError(
                f"node {node_name(op)} ({kind}) has no kernel: tritonnx computes {kind} "
                "only when its inputs are constants, so that it folds away at compile time."
            )

    def group(self, op: ir.Operation | None) -> Group | None:
        """The standing group `op` is in; None for no op, an op in no group or in one absorbed."""
        gid = group_of(op)
        return None if gid is None else self.groups.get(gid)

    def start(self, op: ir.Operation, code: str, why: str) -> Group:
        """A new group with `op` as its first member; `code` is also the group's kind."""
        group = Group(self.next_id, code, [], op)
        self.next_id += 1
        self.groups[group.id] = group
        self.join(op, group, code, why)
        return group

    def join(self, op: ir.Operation, group: Group, code: str, why: str) -> None:
        mark(op, group.id, code, why)
        group.members.append(op)

    def absorb(self, other: Group, group: Group, code: str, why: str) -> None:
        """Every member of `other` joins `group`; `other` is gone."""
        for m in other.members:
            self.join(m, group, code, why)
        del self.groups[other.id]

    def visit_anchor(self, op: ir.Operation) -> Group:
        """A dot or reduction anchor starts a group and takes its inputs' prologues (both
        operands of a dot, the data of a reduction). A note an earlier pass left in
        `tnx.why` (a near attention match) stays in parentheses."""
        if fusion_of(op) == "anchor":  # match-attention's first MatMul
            why = _why(op)
            assert why is not None  # match-attention sets tnx.why with tnx.fusion
        else:
            note = _why(op)
            why = f"anchor ({note})" if note else "anchor"
        group = self.start(op, "anchor", why)
        for value in list(op.operands[:2]) if op.name in fusion.DOT else [op.operands[0]]:
            self.take_prologue(op, value, group)
        return group

    def visit_attention(self, op: ir.Operation) -> None:
        """An op of a matched attention: the first (its first MatMul) anchors the group, the
        others join it with match-attention's code and prose; V, the right operand of the
        second MatMul, and the masks of the ops on the scores (operands of another shape or
        type than the scores) may bring a prologue."""
        match = ir.IntegerAttr(op.attributes["tnx.attention_id"]).value
        if match not in self.attention:
            self.attention[match] = self.visit_anchor(op).id
            return
        group = self.groups[self.attention[match]]
        self.join(op, group, fusion_of(op) or "attention", _why(op) or "attention")
        if op.name == "tnx.mat_mul":
            self.take_prologue(op, op.operands[1], group)
        elif op.name in fusion.POINTWISE:  # a mask computed from inputs (nonpad_kv_seqlen's)
            for value in op.operands:
                if shape_of(value) != shape_of(op.results[0]) or value.type != op.results[0].type:
                    self.take_prologue(op, value, group)
        group.tail = op

    def take_prologue(self, anchor: ir.Operation, value: ir.Value, group: Group) -> None:
        """Moves the pointwise group computing `value` (and the views between) into `group`
        as `anchor`'s prologue, when `prologue` allows."""
        found = self.prologue(anchor, value)
        if found is None:
            return
        other, views, why = found
        self.absorb(other, group, "prologue", why)
        for view in views:
            self.join(view, group, "view", f"index map between the prologue and {node_name(anchor)}")

    def prologue(self, anchor: ir.Operation, operand: ir.Value) -> tuple[Group, list[ir.Operation], str] | None:
        """The pointwise group that computes `operand` of `anchor` alone, to be evaluated on
        the anchor's loads instead of stored and loaded again: (group, views between, why),
        or None. Cost rule: the group's inputs may weigh at most twice its output, so
        recomputing it on every (re-)read of a tile moves no more bytes than a round trip
        through memory. A reduction anchor reads its input k <= 2 times: fused it moves
        k * inputs bytes, unfused inputs + output + k * output, so its limit is three times
        (the embeddings' Add of word, type and position rows before a LayerNorm)."""
        views, v = [], operand
        while True:
            src = producer(v)
            if src is None or len(list(v.uses)) != 1:
                return None
            if src.name in fusion.VIEWS and group_of(src) is None:
                views.append(src)
                v = src.operands[0]
                continue
            break
        group = self.group(src)
        if group is None or group.kind != "pointwise" or group.tail != src:
            return None
        inside = {r for m in group.members for r in m.results}
        external, seen = 0, set()
        for m in group.members:
            for r in m.results:
                if r != v and any(group_of(u.owner.operation) != group.id for u in r.uses):
                    return None  # a value of the group is used outside it
            for x in m.operands:
                if x not in inside and x not in seen:
                    seen.add(x)
                    src_x = producer(x)
                    if src_x is None or src_x.name != "tnx.constant":
                        external += nbytes(x)
        if external > (3 if anchor.name in ROW_ANCHORS else 2) * nbytes(v):
            return None
        return (
            group,
            views,
            (
                f"prologue of {node_name(anchor)}: computed on its loads ({external} input bytes for "
                f"{nbytes(v)} output bytes, no round trip through memory)"
            ),
        )

    def visit_pointwise(self, op: ir.Operation) -> None:
        """A pointwise op joins its producer's group as an epilogue or starts a pointwise
        group; then the pointwise groups only it reads merge in."""
        group = self.epilogue(op)
        if group is None:
            group = self.start(op, "pointwise", "pointwise root: no single-use producer to join")
        self.merge_branches(op, group)
        self.merge_generators(op, group)

    def is_generator(self, group: Group) -> bool:
        """True when `group` is pointwise and reads no tensor: its inputs from outside are
        scalar constants and dynamic sizes (`tnx.sizes`), or none (Range)."""
        if group.kind != "pointwise":
            return False
        inside = {r for m in group.members for r in m.results}
        for m in group.members:
            for x in m.operands:
                src = producer(x)
                if x in inside:
                    continue
                if src is None or src.name not in ("tnx.constant", "tnx.sizes") or math.prod(shape_of(x)) != 1:
                    return False
        return True

    def _feeds_only(self, value: ir.Value, op: ir.Operation, group: Group, views: list) -> bool:
        """True when every reader of `value` is `op`, a member of `group`, or an ungrouped
        view whose results feed only those (collected into `views`)."""
        for use in value.uses:
            owner = use.owner.operation
            if owner == op or group_of(owner) == group.id or owner in views:
                continue
            if owner.name in fusion.VIEWS and group_of(owner) is None:
                if all(self._feeds_only(r, op, group, views) for r in owner.results):
                    views.append(owner)
                    continue
            return False
        return True

    def merge_generators(self, op: ir.Operation, group: Group) -> None:
        """Generator groups whose values only `op` reads (directly or through ungrouped
        views, at any shape) merge into `group` with the views between: the kernel
        recomputes them on its indices."""
        found: list[Group] = []

        def walk(v: ir.Value, depth: int = 0) -> None:
            src = producer(v)
            if src is None or depth > 32:
                return
            if src.name in fusion.VIEWS and group_of(src) is None:
                for w in src.operands:
                    walk(w, depth + 1)
                return
            other = self.group(src)
            if other is not None and other is not group and other not in found and self.is_generator(other):
                found.append(other)

        for v in op.operands:
            walk(v)
        for other in found:
            views: list[ir.Operation] = []
            if other.id in self.groups and all(
                self._feeds_only(r, op, other, views) for m in other.members for r in m.results
            ):
                why = f"generator merged into {node_name(op)}'s group: computed from the sizes on its indices"
                self.absorb(other, group, "generator", why)
                for view in views:
                    self.join(view, group, "view", f"index map between a generator and {node_name(op)}")

    def epilogue(self, op: ir.Operation) -> Group | None:
        """Joins `op` to the group whose last op produces an operand that only `op` reads,
        of `op`'s size (directly at the same shape, or through single-use ungrouped
        Reshapes, which keep element order and join too); the group, or None."""
        for value in op.operands:
            src, through = producer(value), []
            while (
                src is not None
                and src.name == "tnx.reshape"
                and group_of(src) is None
                and len(list(src.results[0].uses)) == 1
            ):  # a reshape keeps element order
                through.append(src)
                src = producer(src.operands[0])
                value = through[-1].operands[0]
            group = self.group(src)
            if (
                group is not None
                and group.tail == src
                and len(list(value.uses)) == 1
                and src.name not in fusion.NO_EPILOGUE
                and math.prod(shape_of(value)) == math.prod(shape_of(op.results[0]))
                and (through or shape_of(value) == shape_of(op.results[0]))
            ):
                how = " through a reshape" if through else ""
                for r in through:
                    self.join(r, group, "view", f"reshape of {node_name(src)}'s result: same element order")
                self.join(op, group, "epilogue", f"epilogue of {node_name(src)}{how}: sole consumer, same size")
                group.tail = op
                return group
        return None

    def merge_branches(self, op: ir.Operation, group: Group) -> None:
        """Other operands of `op` that are the sole-use results of pointwise groups, at
        `op`'s shape, read by nothing outside (the branches of a decomposed Gelu, say), merge
        into `group`: one kernel computes the whole expression."""
        for value in op.operands:
            other = self.group(producer(value))
            if (
                other is None
                or other is group
                or other.kind != "pointwise"
                or other.tail != producer(value)
                or len(list(value.uses)) != 1
                or shape_of(value) != shape_of(op.results[0])
                or any(
                    u.owner.operation != op and group_of(u.owner.operation) != other.id
                    for m in other.members
                    for r in m.results
                    for u in r.uses
                )
            ):
                continue
            why = f"pointwise branch merged into {node_name(op)}'s group: its only reader"
            self.absorb(other, group, "branch", why)

    def visit_view(self, op: ir.Operation) -> None:
        """A view joins no group (an index map on its readers' loads), except a Reshape of a
        group's result that is only returned (stored in place); another view that is a graph
        output starts a copy group."""
        src = producer(op.operands[0])
        group = self.group(src)
        only_returned = all(use.owner.operation.name == "func.return" for use in op.results[0].uses)
        if (
            op.name == "tnx.reshape"
            and only_returned
            and group is not None
            and group.tail == src
            and len(list(op.operands[0].uses)) == 1
        ):
            self.join(op, group, "view", "reshape of the group's result: stored in place (same element order)")
            group.tail = op
        elif any(use.owner.operation.name == "func.return" for use in op.results[0].uses):
            self.start(op, "copy", "view that is a graph output: materialized by a copy kernel")
