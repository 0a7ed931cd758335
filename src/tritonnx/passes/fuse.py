"""fuse: partitions the graph into fusion groups, one Triton kernel each.

First, horizontal fusion: MatMuls (Q, K, V projections) and Convs (Inception's 1x1
branches) that read the same input with constant weights become one, over concatenated
weights; their former results are Slices of it (`tnx.merged` says so).
Then, in topological order:
- Scaled dot-product attention (MatMul, pointwise ops on the scores such as the scale,
  a padding-mask Add or a causal Where, Softmax over the keys, MatMul) is one group,
  lowered to a flash-attention kernel; a Softmax that nearly matches says why not.
- Conv, Gemm, MatMul (dot anchors) and MaxPool, AveragePool, GlobalAveragePool, Softmax,
  reductions, normalizations (reduction anchors) start a group.
- A pointwise group whose result only an anchor reads (Conv/Gemm/MatMul data or weights,
  a pool, reduction, normalization or Softmax input) becomes the anchor's prologue: it is
  computed on the anchor's loads, when its inputs weigh at most twice its output (so
  recomputing it per tile re-read costs no more than storing and loading it once).
- A pointwise op (Relu, Clip, Add, Mul, Where, Cast, ...: `dialects/ops.py`) joins the group of the
  producer whose value it alone consumes and whose shape it keeps (an epilogue: bias,
  activation, residual add); its other operands are loaded by the kernel. Otherwise it
  starts a pointwise group. Pointwise groups whose only reader it is merge into its group
  (the branches of a decomposed Gelu become one kernel).
- View ops (Reshape, Transpose, Concat, Slice, Pad, Expand, Tile, Gather, ...) join no group: they become index maps on the loads
  of every kernel that reads them. A Reshape of a group's result that is only a graph
  output joins the group (a reshape keeps element order, so the kernel stores in place);
  any other view that is a graph output gets a copy kernel.
Last, multi-output fusion: a pointwise group still standing alone, because the value it
reads feeds other kernels too, joins the group producing that value as a second output
(read directly or through Slices: Inception's branch of a merged Conv), and moves up to it.
Each op gets `tnx.group` (the group id) and `tnx.fusion` (why it is in that group).
"""
from __future__ import annotations

import math

import numpy as np
from mlir import ir

from tritonnx.dialects import onnx_op_type
from tritonnx.dialects.builders import attrs_of, create, np_dtype, operand, producer, shape_of, to_attr
from tritonnx.dialects.ops import DOT, KIND, POINTWISE, REDUCE, VIEWS
from tritonnx.errors import CompileError
from tritonnx.passes import current_session, functions, ops
from tritonnx.passes.kernel_info import node_name

NAME = "fuse"

NO_EPILOGUE = ("tnx.top_k",)  # anchors that store as they go


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        if "sym_visibility" in fn.attributes:
            continue  # kernels are already outlined
        if current_session().options.gpu is not None:
            _split_k(fn.regions[0].blocks[0])
        _merge_siblings(fn.regions[0].blocks[0])
        _merge_sibling_convs(fn.regions[0].blocks[0])
        _partition(fn.regions[0].blocks[0])


MIN_SPLIT_K = 8192  # a shorter reduction is not worth a second kernel


def _split_k(block: ir.Block) -> None:
    """Split-K for GPU targets: a 2-D Gemm or MatMul whose output gives fewer than a quarter
    of the SMs a program even with 16x32 blocks (the tile pass's smallest: a [1, 1000]
    classifier output is 32 programs for 132 SMs) while K is long (at least MIN_SPLIT_K)
    becomes a batched MatMul over S slices of K ([S, M, K/S] x [S, K/S, N], the slices as
    index maps) and a ReduceSum over the S partial products, which carries alpha, the C
    input and the Gemm's epilogue (bias, Relu). Narrower outputs with shorter K are left to
    the tile pass, which shrinks blocks instead of adding a kernel."""
    from tritonnx.passes.canonicalize import make_constant
    SMS = current_session().options.gpu.sms  # noqa: N806 - the tiled-for GPU's SMs
    for op in ops(block):
        if op.name not in ("tnx.gemm", "tnx.mat_mul") or len(shape_of(op.operands[0])) != 2:
            continue
        a = attrs_of(op)
        if a.get("transA", 0) or len(shape_of(op.operands[1])) != 2:
            continue
        m, n = shape_of(op.results[0])
        k = shape_of(op.operands[0])[1]
        programs = -(-m // 16) * -(-n // 32)
        if k < MIN_SPLIT_K or programs * 4 > SMS:
            continue
        s = 1
        while s * 2 * programs <= SMS and k % (s * 2) == 0 and k // (s * 2) >= 512:
            s *= 2
        if s < 2:
            continue
        et = ir.RankedTensorType(op.results[0].type).element_type
        x, w, ks = op.operands[0], op.operands[1], k // s

        def tensor(shape):
            return ir.RankedTensorType.get(list(shape), et)
        with ir.InsertionPoint(op), op.location:
            a3 = create("tnx.reshape", [x], [tensor([m, s, ks])]).result
            a3 = create("tnx.transpose", [a3], [tensor([s, m, ks])], {"perm": [1, 0, 2]}).result
            if a.get("transB", 0):  # W is [N, K]
                b3 = create("tnx.reshape", [w], [tensor([n, s, ks])]).result
                b3 = create("tnx.transpose", [b3], [tensor([s, ks, n])], {"perm": [1, 2, 0]}).result
            else:
                b3 = create("tnx.reshape", [w], [tensor([s, ks, n])]).result
            partial = create("tnx.mat_mul", [a3, b3], [tensor([s, m, n])]).operation
            partial.attributes["tnx.split_k"] = to_attr(
                f"split-K of {node_name(op)}: {m}x{n} outputs give {programs} programs for {SMS} SMs; "
                f"{s} slices of K = {k}")
            y = create("tnx.reduce_sum", [partial.results[0]], [tensor([m, n])], {"axes": [0], "keepdims": 0}).result
            if a.get("alpha", 1.0) != 1.0:
                alpha = make_constant(np.array(a["alpha"], dtype=np_dtype(et)), "alpha")
                y = create("tnx.mul", [y, alpha], [tensor([m, n])]).result
            c = operand(op, "c") if op.name == "tnx.gemm" else None
            if c is not None and a.get("beta", 1.0) != 0.0:
                if a.get("beta", 1.0) != 1.0:
                    beta = make_constant(np.array(a["beta"], dtype=np_dtype(et)), "beta")
                    c = create("tnx.mul", [c, beta], [c.type]).result
                y = create("tnx.add", [y, c], [tensor([m, n])]).result
        op.results[0].replace_all_uses_with(y)
        op.erase()


def _replace_by_slices(merged: ir.Value, parts: list[ir.Value], widths: list[int], axis: int) -> None:
    """Each of `parts` becomes its Slice (of `widths[i]` along `axis`, in order) of `merged`."""
    rank, start = len(shape_of(merged)), 0
    for part, n in zip(parts, widths):
        starts = [0] * rank
        starts[axis] = start
        piece = create("tnx.slice", [merged], [part.type], dict(starts=starts, steps=[1] * rank)).result
        part.replace_all_uses_with(piece)
        start += n


def _merge_siblings(block: ir.Block) -> None:
    """Horizontal fusion: MatMuls that read the same input with constant [K, N_i] weights
    (the Q, K and V projections), each with or without a constant bias Add, become one
    MatMul over the concatenated weights [K, sum N_i] (and one bias Add); each former
    result is a Slice of the merged one, an index map for its readers."""
    from tritonnx.passes.canonicalize import constant_array, is_constant, make_constant

    def mergeable(mm):
        return mm.name == "tnx.mat_mul" and is_constant(mm.operands[1]) and len(shape_of(mm.operands[1])) == 2

    def bias(mm):
        users = list(mm.results[0].uses)
        if len(users) != 1 or users[0].owner.operation.name != "tnx.add":
            return None
        add = users[0].owner.operation
        other = add.operands[1 - users[0].operand_number]
        n = shape_of(mm.results[0])[-1]
        return add if is_constant(other) and shape_of(other) == [n] else None

    done: list[ir.Value] = []
    while True:  # one input per scan: a merge erases ops, whose values a later scan must not see
        x = next((op.operands[0] for op in ops(block) if mergeable(op) and all(op.operands[0] != y for y in done)),
                 None)
        if x is None:
            return
        done.append(x)
        siblings = [u.owner.operation for u in x.uses if u.operand_number == 0 and mergeable(u.owner.operation)]
        siblings = [m for m in siblings  # a graph output would need a copy kernel of its slice
                    if not any(u.owner.operation.name == "func.return"
                               for u in (bias(m) or m).results[0].uses)]
        order = {m: i for i, m in enumerate(ops(block))}
        with_and_without = ([m for m in siblings if bias(m) is not None], [m for m in siblings if bias(m) is None])
        for with_bias, group in zip((True, False), with_and_without):
            if len(group) < 2 or len({str(ir.RankedTensorType(m.results[0].type).element_type) for m in group}) != 1:
                continue
            first = min(group, key=lambda m: order[m])
            weights = [constant_array(m.operands[1]) for m in group]
            widths = [w.shape[1] for w in weights]
            out_shape = shape_of(group[0].results[0])[:-1] + [sum(widths)]
            et = ir.RankedTensorType(group[0].results[0].type).element_type
            names = ", ".join(node_name(m) for m in group)
            with ir.InsertionPoint(first), first.location:
                w = make_constant(np.concatenate(weights, axis=1), "merged")
                merged = create("tnx.mat_mul", [x, w], [ir.RankedTensorType.get(out_shape, et)]).operation
                merged.attributes["tnx.merged"] = to_attr(f"horizontal fusion of {names}: one MatMul reads the input once")
                result = merged.results[0]
                if with_bias:
                    adds = [bias(m) for m in group]
                    b = make_constant(np.concatenate([constant_array(a.operands[1] if a.operands[0] == m.results[0]
                                                                     else a.operands[0]) for a, m in zip(adds, group)]),
                                      "merged_bias")
                    result = create("tnx.add", [result, b], [result.type]).result
                _replace_by_slices(result, [bias(m).results[0] if with_bias else m.results[0] for m in group],
                                   widths, len(out_shape) - 1)
            for m in group:
                if with_bias:
                    add = bias(m)
                    add.erase()
                m.erase()


CONV_ATTRS = ("dilations", "group", "kernel_shape", "pads", "strides")


def _merge_sibling_convs(block: ir.Block) -> None:
    """Horizontal fusion of Convs (Inception's 1x1 branches): Convs of one input with equal
    kernel_shape, strides, pads, dilations, group 1 and constant weights become one Conv over
    the weights concatenated along output channels. When every one of them is followed by
    the same activation as its only reader, the activation applies once to the merged
    result. Each former result is a channel Slice of it: an index map for its readers."""
    from tritonnx.passes.canonicalize import constant_array, is_constant, make_constant

    def key(conv):
        a = attrs_of(conv)
        bias = operand(conv, "b")
        if a["group"] != 1 or not is_constant(conv.operands[1]) or (bias is not None and not is_constant(bias)):
            return None
        users = list(conv.results[0].uses)
        act = users[0].owner.operation if len(users) == 1 else None
        act_key = None
        if act is not None and act.name in POINTWISE and len(act.operands) == 1:
            act_key = (act.name, str(sorted((k, str(v)) for k, v in attrs_of(act).items())))
        out = act.results[0] if act_key else conv.results[0]
        if any(u.owner.operation.name == "func.return" for u in out.uses):
            return None  # a graph output would need a copy kernel of its slice
        return (tuple(str(a[k]) for k in CONV_ATTRS), act_key, str(conv.results[0].type.element_type))

    while True:  # one merge per scan: a merge erases ops, whose values a later scan must not see
        group, act_key = None, None
        for op in ops(block):
            if op.name != "tnx.conv":
                continue
            keyed: dict = {}
            for u in op.operands[0].uses:
                c = u.owner.operation
                if u.operand_number == 0 and c.name == "tnx.conv" and key(c) is not None:
                    keyed.setdefault(key(c), []).append(c)
            found = next(((k, g) for k, g in keyed.items() if len(g) >= 2), None)
            if found is not None:
                (_, act_key, _), group = found
                x = op.operands[0]
                break
        if group is None:
            return
        order = {m: i for i, m in enumerate(ops(block))}
        first = min(group, key=lambda m: order[m])
        weights = [constant_array(c.operands[1]) for c in group]
        widths = [w.shape[0] for w in weights]
        biases = [constant_array(operand(c, "b")) if operand(c, "b") is not None
                  else np.zeros(n, w.dtype) for c, w, n in zip(group, weights, widths)]
        out_shape = shape_of(group[0].results[0])
        out_shape = [out_shape[0], sum(widths)] + out_shape[2:]
        et = ir.RankedTensorType(group[0].results[0].type).element_type
        names = ", ".join(node_name(c) for c in group)
        acts = [next(iter(c.results[0].uses)).owner.operation for c in group] if act_key else None
        with ir.InsertionPoint(first), first.location:
            w = make_constant(np.concatenate(weights, axis=0), "merged")
            b = make_constant(np.concatenate(biases), "merged_bias")
            rtype = ir.RankedTensorType.get(out_shape, et)
            merged = create("tnx.conv", [x, w, b], [rtype], {k: attrs_of(first)[k] for k in CONV_ATTRS}).operation
            merged.attributes["tnx.merged"] = to_attr(f"horizontal fusion of {names}: one Conv reads the input once")
            result = merged.results[0]
            if acts:
                act = acts[0]
                result = create(act.name, [result], [rtype], attrs_of(act)).result
            _replace_by_slices(result, [a.results[0] for a in acts] if acts else [c.results[0] for c in group],
                               widths, 1)
        for i, c in enumerate(group):
            if acts:
                acts[i].erase()
            c.erase()


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


MAX_HEAD_DIM = 256  # one block holds a head's row of Q, K and V


def _attention(softmax: ir.Operation) -> tuple[ir.Operation, list[ir.Operation], ir.Operation] | str | None:
    """Scaled dot-product attention around `softmax`: (first MatMul, the pointwise ops between
    it and the Softmax (scale, mask add, causal Where), second MatMul), a string saying why
    a near match does not fuse, or None when the Softmax is not attention at all."""
    x = softmax.results[0]
    rank = len(shape_of(x))
    v, chain = softmax.operands[0], []
    while True:
        src = producer(v)
        if src is None or len(list(v.uses)) != 1:
            return None
        if src.name == "tnx.mat_mul":
            break
        if src.name not in POINTWISE or shape_of(src.results[0]) != shape_of(x):
            return None
        chain.append(src)
        # the score runs through the operand of the same shape (a mask broadcasts)
        scores = [o for o in src.operands if shape_of(o) == shape_of(x) and producer(o) is not None
                  and producer(o).name in POINTWISE + ("tnx.mat_mul",)]
        if len(scores) != 1:
            return None
        v = scores[0]
    m1 = src
    users = list(x.uses)
    if rank < 2 or attrs_of(softmax)["axis"] not in (rank - 1, -1):
        return "not fused as attention: the Softmax is not over the keys (last) axis"
    if len(users) != 1 or users[0].owner.operation.name != "tnx.mat_mul" or users[0].operand_number != 0:
        return "not fused as attention: the Softmax's result is not only the left operand of a MatMul"
    m2 = users[0].owner.operation
    d, dv = shape_of(m1.operands[0])[-1], shape_of(m2.results[0])[-1]
    if max(d, dv) > MAX_HEAD_DIM:
        return f"not fused as attention: head dimension {max(d, dv)} > {MAX_HEAD_DIM}"
    return m1, list(reversed(chain)), m2


def _partition(block: ir.Block) -> None:
    # ops are keyed by position: an ir.Operation's hash changes when its attributes do
    block_ops = ops(block)
    position = {op: i for i, op in enumerate(block_ops)}
    attention: dict[int, tuple] = {}  # op -> (position of its first MatMul or None for that one, reason)
    notes: dict[int, str] = {}
    found_attention = []
    for i, op in enumerate(block_ops):
        if op.name != "tnx.softmax":
            continue
        found = _attention(op)
        if isinstance(found, str):
            notes[i] = found
        elif found is not None:
            m1, chain, m2 = found
            found_attention.append(op)
            first = position[m1]
            attention[first] = (None, "anchor: flash attention (online softmax, the score matrix is never stored)")
            for c in chain:
                attention[position[c]] = (first, "attention: applied to each tile of scores")
            attention[i] = (first, "attention: online softmax over tiles of keys")
            attention[position[m2]] = (first, "attention: probabilities times V, accumulated per tile of keys")
    for op in found_attention:
        op.attributes["tnx.attention"] = ir.UnitAttr.get()
    next_id = 0
    tail: dict[int, ir.Operation] = {}  # group -> its last op (the group's output)
    members: dict[int, list[ir.Operation]] = {}
    pointwise_groups: set[int] = set()  # groups with no anchor: candidates for prologues

    def mark(op: ir.Operation, group: int, reason: str) -> None:
        _mark(op, group, reason)
        members.setdefault(group, []).append(op)
    def take_prologue(anchor: ir.Operation, value: ir.Value, group: int) -> None:
        found = _prologue(anchor, value, members, pointwise_groups, tail)
        if found is None:
            return
        pg, views, reason = found
        for m in members.pop(pg):
            mark(m, group, reason)
        for view in views:
            mark(view, group, f"index map between the prologue and {node_name(anchor)}")
        pointwise_groups.discard(pg)
        del tail[pg]

    group_at: dict[int, int] = {}  # position of an attention's first MatMul -> its group
    for i, op in enumerate(block_ops):
        name = op.name
        if i in attention and attention[i][0] is not None:  # inside an attention group
            g = group_at[attention[i][0]]
            mark(op, g, attention[i][1])
            if name == "tnx.mat_mul":  # P V: V may have a prologue
                take_prologue(op, op.operands[1], g)
            tail[g] = op
        elif name in DOT or name in REDUCE:
            group_at[i] = next_id
            mark(op, next_id, attention[i][1] if i in attention else
                 ("anchor (" + notes[i] + ")" if i in notes else "anchor"))
            for value in (list(op.operands[:2]) if name in DOT else [op.operands[0]]):
                take_prologue(op, value, next_id)
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
            # other operands that are the sole-use results of pointwise groups (the branches
            # of a decomposed Gelu, say) merge in: one kernel computes the whole expression
            g = _group(op)
            for value in op.operands:
                h = _group(producer(value))
                if (h is None or h == g or h not in pointwise_groups or tail[h] != producer(value)
                        or len(list(value.uses)) != 1 or shape_of(value) != shape_of(op.results[0])
                        or any(u.owner.operation != op and _group(u.owner.operation) != h
                               for m in members[h] for r in m.results for u in r.uses)):
                    continue
                for m in members.pop(h):
                    mark(m, g, f"pointwise branch merged into {node_name(op)}'s group: its only reader")
                pointwise_groups.discard(h)
                del tail[h]
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
    _second_outputs(block, members, tail, pointwise_groups)


def _second_outputs(block: ir.Block, members: dict, tail: dict, pointwise_groups: set) -> None:
    """Multi-output fusion. A pointwise group left standing alone (its input is a value that
    several kernels read, so it could be neither an epilogue nor a prologue) joins the group
    that produces that input: the kernel stores its own result and then the pointwise
    group's, computed from the tile it holds in registers: one launch and one read of the
    value fewer. The pointwise group may read the producer's output directly or through
    Slices with unit steps (Inception's branch of a merged Conv): its output then covers a
    window of the producer's index space. Conditions: it reads one producer group, only
    there, at its own index (same shape, no broadcast); only its last value leaves it; its
    other inputs are constants or defined before the producer's kernel, so it can move up
    to it (a kernel is called at its group's last op)."""
    outputs = {g: [t.results[0]] for g, t in tail.items()}  # group -> the values it stores
    start = {op: i for i, op in enumerate(ops(block))}
    for p in sorted(pointwise_groups, key=lambda g: start[members[g][0]]):
        p_ops = members[p]
        out = tail[p].results[0]
        inside = {r for m in p_ops for r in m.results}
        if any(r != out and any(_group(u.owner.operation) != p for u in r.uses) for r in inside):
            continue
        hosts, windows, external, slices, ok = set(), set(), [], [], True
        for m in p_ops:
            for x in m.operands:
                if x in inside:
                    continue
                base, chain = _through_slices(x)
                h = _group(producer(base))
                if h is not None and h != p:
                    if (base not in outputs[h] or not _read_elsewhere(base, p) or tail[h].name in NO_EPILOGUE
                            or shape_of(x) != shape_of(m.results[0]) or shape_of(x) != shape_of(out)):
                        ok = False
                    hosts.add(h)
                    windows.add(tuple(str(attrs_of(s_)["starts"]) for s_ in chain))
                    slices += [s_ for s_ in reversed(chain) if all(s_ != t for t in slices)]
                elif _reads_group_through_views(x):
                    ok = False  # the kernel would hold the value at another index than the view needs
                external.append(x)
        if not ok or len(hosts) != 1 or len(windows) != 1:
            continue
        host = hosts.pop()
        pos = {op: i for i, op in enumerate(ops(block))}  # ops moved by earlier merges
        at = pos[tail[host]]
        movable = [s_ for s_ in slices if pos[s_] > at]  # move up with the group, in order
        for x in external:
            src = producer(x)
            if src is None or _group(src) == host or pos[src] < at or any(src == s_ for s_ in movable):
                continue
            if src.name != "tnx.constant":
                ok = False
            elif all(src != c for c in movable):
                movable.insert(0, src)
        if not ok:
            continue
        how = " through a Slice" if slices else ""
        reason = (f"second output of {node_name(tail[host])}'s kernel: reads its result{how} at the same index, "
                  "which other kernels read too (multi-output kernel: one launch and one read fewer)")
        last = tail[host]
        # members lists a group's ops in the order they joined, not in block order: a branch
        # merged into the group (_partition) is listed after the op that reads it
        for op in movable + sorted(p_ops, key=lambda m: pos[m]):
            op.move_after(last)
            last = op
        for m in members.pop(p):
            _mark(m, host, reason)
            members[host].append(m)
        outputs[host].append(out)
        tail[host] = tail.pop(p)
        pointwise_groups.discard(p)


def _read_elsewhere(value: ir.Value, group: int) -> bool:
    """Whether something besides `group` reads `value`: another group, the graph's return,
    directly or through ungrouped views."""
    for use in value.uses:
        user = use.owner.operation
        if user.name in VIEWS and _group(user) is None:
            if _read_elsewhere(user.results[0], group):
                return True
        elif _group(user) != group:
            return True
    return False


def _through_slices(value: ir.Value) -> tuple[ir.Value, list[ir.Operation]]:
    """(the value under a chain of ungrouped, static, unit-step Slices ending at `value`, the
    Slices from `value` down)."""
    chain = []
    while True:
        src = producer(value)
        if (src is None or src.name != "tnx.slice" or _group(src) is not None or len(src.operands) != 1
                or any(s != 1 for s in attrs_of(src)["steps"])):
            return value, chain
        chain.append(src)
        value = src.operands[0]


def _reads_group_through_views(value: ir.Value) -> bool:
    """Whether `value` is an ungrouped view of (a view of ...) a value some group computes."""
    src = producer(value)
    if src is None or src.name not in VIEWS or _group(src) is not None:
        return False
    return any(_group(producer(x)) is not None or _reads_group_through_views(x) for x in src.operands)
