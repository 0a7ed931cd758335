"""match-attention: scaled dot-product attention (MatMul, scores, Softmax, MatMul) marked for one kernel.

The pattern: a MatMul, pointwise ops on the scores of the same shape (the scale, a
padding-mask Add, a causal Where), a Softmax over the keys (last) axis whose result is only
the left operand of a second MatMul, head dimensions at most MAX_HEAD_DIM. Its ops get
`tnx.attention_id` (one id per match), their `tnx.fusion` code ("anchor" for the first
MatMul, "attention" for the others) and `tnx.why`; the Softmax gets `tnx.attention`, which
outline reads to pick the flash-attention template. `partition` makes each match one group
(V may add a prologue) and removes `tnx.attention_id`. A Softmax that nearly matches gets a
`tnx.why` saying why not, which the report shows.
"""

from __future__ import annotations

from mlir import ir

from tritonnx.dialects.builders import attrs_of, producer, shape_of, to_attr
from tritonnx.passes import functions, ops
from tritonnx.passes.fusion import FUSION, POINTWISE

NAME = "match-attention"

ROLES = {  # (code, why) of each op of a match
    "first": ("anchor", "anchor: flash attention (online softmax, the score matrix is never stored)"),
    "scores": ("attention", "attention: applied to each tile of scores"),
    "softmax": ("attention", "attention: online softmax over tiles of keys"),
    "second": ("attention", "attention: probabilities times V, accumulated per tile of keys"),
}


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        if "sym_visibility" in fn.attributes:
            continue  # kernels are already outlined
        matches = 0
        for op in ops(fn.regions[0].blocks[0]):
            if op.name != "tnx.softmax":
                continue
            found = _attention(op)
            if isinstance(found, str):
                op.attributes["tnx.why"] = to_attr(found)
            elif found is not None:
                m1, chain, m2 = found
                for role, members in (("first", [m1]), ("scores", chain), ("softmax", [op]), ("second", [m2])):
                    code, why = ROLES[role]
                    assert code in FUSION
                    for m in members:
                        m.attributes["tnx.attention_id"] = to_attr(matches)
                        m.attributes["tnx.fusion"] = to_attr(code)
                        m.attributes["tnx.why"] = to_attr(why)
                op.attributes["tnx.attention"] = ir.UnitAttr.get()
                matches += 1


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
        scores = [
            o
            for o in src.operands
            if shape_of(o) == shape_of(x) and (p := producer(o)) is not None and p.name in POINTWISE + ("tnx.mat_mul",)
        ]
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
