"""Names of a kernel's arguments, as its printed source calls them (`x_ptr`, `w_ptr`,
`bias_ptr`, `y_ptr`): lower-to-tile gives each entry-block argument a NameLoc."""

from __future__ import annotations

from mlir import ir

from tritonnx.dialects import operand_specs
from tritonnx.dialects.ops import VIEWS
from tritonnx.passes import ops
from tritonnx.passes.kernel_info import attention_ops

ROLES = {"X": "x", "W": "w", "B": "bias", "A": "a", "C": "c"}  # an anchor's operands (Conv's B is its bias)


def _source(v: ir.Value) -> ir.Value:
    """The value `v` reads through views (the kernel argument a transposed K comes from)."""
    while not isinstance(v.owner, ir.Block):
        op = v.owner.operation if hasattr(v.owner, "operation") else v.owner
        if op.name not in VIEWS:
            break
        v = op.operands[0]
    return v


def attention_roles(anchor: ir.Operation) -> dict:
    """{value: role} for an attention kernel's arguments: the queries `q`, keys `k` (read
    through a Transpose) and values `v` of the two MatMuls around its Softmax."""
    m1, m2 = attention_ops(anchor)
    return {_source(m1.operands[0]): "q", _source(m1.operands[1]): "k", _source(m2.operands[1]): "v"}


def argument_names(
    block: ir.Block, anchor: ir.Operation | None, n_checks: int, n_outputs: int, roles: dict | None = None
) -> list[str]:
    """One name per argument of the tnx-level kernel `block`, then per check buffer and per
        output: an input the anchor reads is named by the anchor's operand (`x`, `w`, `bias`;
        Gemm's and MatMul's `a`, `b`, `c`), another by the op that reads it first and its
        operand (`add_b`, `gather_indices`); check buffers are `check0`..., outputs `y` (`y0`,
        `y1`... for several); `roles` names some arguments outright (`attention_roles`). Each
    ends in `_ptr`; the printer makes repeated names unique."""
    names = []
    roles = roles or {}
    for arg in block.arguments:
        role = next((r for v, r in roles.items() if v == arg), None)
        if role is not None:
            names.append(f"{role}_ptr")
            continue
        user, pos = None, 0
        for op in ops(block):
            hits = [i for i, v in enumerate(op.operands) if v == arg]
            is_anchor = anchor is not None and op == anchor
            if hits and (user is None or is_anchor):
                user, pos = op, hits[0]
                if is_anchor or anchor is None:
                    break
        if user is None:
            names.append("in_ptr")
            continue
        spec = operand_specs().get(user.name, ())
        operand_name = (spec[pos][0] if pos < len(spec) else f"in{pos}").upper()
        if anchor is not None and user == anchor:
            role = (
                "b"
                if operand_name == "B" and user.name in ("tnx.gemm", "tnx.mat_mul")
                else ROLES.get(operand_name, operand_name.lower())
            )
        else:
            role = f"{user.name[4:]}_{operand_name.lower()}"
        names.append(f"{role}_ptr")
    names += [f"check{i}_ptr" for i in range(n_checks)]
    names += ["y_ptr"] if n_outputs == 1 else [f"y{i}_ptr" for i in range(n_outputs)]
    return names
