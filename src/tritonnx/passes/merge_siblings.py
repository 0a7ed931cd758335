"""merge-siblings: horizontal fusion, sibling MatMuls or Convs of one input become one over concatenated weights.

MatMuls that read the same input with constant [K, N_i] weights (the Q, K and V
projections), with or without a constant bias Add, become one MatMul over [K, sum N_i]
(and one bias Add). Convs of one input with equal kernel_shape, strides, pads, dilations,
group 1 and constant weights (Inception's 1x1 branches) become one Conv over the weights
concatenated along output channels, with their common activation once. Each former result
is a Slice of the merged one, an index map for its readers; the merged op says so in
`tnx.merged`. Siblings whose result is a graph output stay apart (the Slice would need a
copy kernel).
"""

from __future__ import annotations

import numpy as np
from mlir import ir

from tritonnx.dialects.builders import attrs_of, create, operand, shape_of, tensor_type, to_attr
from tritonnx.passes import functions, ops
from tritonnx.passes.fusion import POINTWISE, node_name

NAME = "merge-siblings"


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        if "sym_visibility" not in fn.attributes:  # kernels are already outlined
            _merge_matmuls(fn.regions[0].blocks[0])
            _merge_convs(fn.regions[0].blocks[0])


def _replace_by_slices(merged: ir.Value, parts: list[ir.Value], widths: list[int], axis: int) -> None:
    """Each of `parts` becomes its Slice (of `widths[i]` along `axis`, in order) of `merged`."""
    rank, start = len(shape_of(merged)), 0
    for part, n in zip(parts, widths):
        starts = [0] * rank
        starts[axis] = start
        piece = create("tnx.slice", [merged], [part.type], {"starts": starts, "steps": [1] * rank}).result
        part.replace_all_uses_with(piece)
        start += n


def _merge_matmuls(block: ir.Block) -> None:
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
        x = next(
            (op.operands[0] for op in ops(block) if mergeable(op) and all(op.operands[0] != y for y in done)), None
        )
        if x is None:
            return
        done.append(x)
        siblings = [u.owner.operation for u in x.uses if u.operand_number == 0 and mergeable(u.owner.operation)]
        siblings = [
            m
            for m in siblings  # a graph output would need a copy kernel of its slice
            if not any(u.owner.operation.name == "func.return" for u in (bias(m) or m).results[0].uses)
        ]
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
                merged = create("tnx.mat_mul", [x, w], [tensor_type(out_shape, et)]).operation
                why = f"horizontal fusion of {names}: one MatMul reads the input once"
                merged.attributes["tnx.merged"] = to_attr(why)
                result = merged.results[0]
                if with_bias:
                    adds = [bias(m) for m in group]
                    b = make_constant(
                        np.concatenate(
                            [
                                constant_array(a.operands[1] if a.operands[0] == m.results[0] else a.operands[0])
                                for a, m in zip(adds, group)
                            ]
                        ),
                        "merged_bias",
                    )
                    result = create("tnx.add", [result, b], [result.type]).result
                _replace_by_slices(
                    result,
                    [bias(m).results[0] if with_bias else m.results[0] for m in group],
                    widths,
                    len(out_shape) - 1,
                )
            for m in group:
                if with_bias:
                    add = bias(m)
                    add.erase()
                m.erase()


CONV_ATTRS = ("dilations", "group", "kernel_shape", "pads", "strides")


def _merge_convs(block: ir.Block) -> None:
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
        biases = [
            constant_array(operand(c, "b")) if operand(c, "b") is not None else np.zeros(n, w.dtype)
            for c, w, n in zip(group, weights, widths)
        ]
        out_shape = shape_of(group[0].results[0])
        out_shape = [out_shape[0], sum(widths)] + out_shape[2:]
        et = ir.RankedTensorType(group[0].results[0].type).element_type
        names = ", ".join(node_name(c) for c in group)
        acts = [next(iter(c.results[0].uses)).owner.operation for c in group] if act_key else None
        with ir.InsertionPoint(first), first.location:
            w = make_constant(np.concatenate(weights, axis=0), "merged")
            b = make_constant(np.concatenate(biases), "merged_bias")
            rtype = tensor_type(out_shape, et)
            merged = create("tnx.conv", [x, w, b], [rtype], {k: attrs_of(first)[k] for k in CONV_ATTRS}).operation
            merged.attributes["tnx.merged"] = to_attr(f"horizontal fusion of {names}: one Conv reads the input once")
            result = merged.results[0]
            if acts:
                act = acts[0]
                result = create(act.name, [result], [rtype], attrs_of(act)).result
            _replace_by_slices(
                result, [a.results[0] for a in acts] if acts else [c.results[0] for c in group], widths, 1
            )
        for i, c in enumerate(group):
            if acts:
                acts[i].erase()
            c.erase()
