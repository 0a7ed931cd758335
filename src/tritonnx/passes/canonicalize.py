"""tnx-canonicalize: removes Identity and inference Dropout, folds constant subgraphs (Shape
arithmetic, ConstantOfShape weights), folds BatchNormalization into the preceding Conv's
weights (or decomposes it into Mul and Add), turns Flatten/Squeeze/Unsqueeze/Reshape into
a shape-only `tnx.reshape`, and drops dead ops."""
from __future__ import annotations

import numpy as np
from mlir import ir

from tritonnx.dialects.builders import attrs_of, create, dtype_of, operand, producer, shape_of
from tritonnx.errors import CompileError
from tritonnx.passes import current_weights, functions

NAME = "tnx-canonicalize"

VIEWS = ("tnx.flatten", "tnx.squeeze", "tnx.unsqueeze", "tnx.reshape")


def _np_slice(data, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


# numpy evaluation of ops whose operands are all constants: (operands, attrs, result shape)
FOLDERS = {
    "tnx.add": lambda x, a, s: x[0] + x[1],
    "tnx.sub": lambda x, a, s: x[0] - x[1],
    "tnx.mul": lambda x, a, s: x[0] * x[1],
    "tnx.div": lambda x, a, s: x[0] // x[1] if x[0].dtype.kind == "i" else x[0] / x[1],
    "tnx.gather": lambda x, a, s: np.take(x[0], x[1], axis=a["axis"]),
    "tnx.concat": lambda x, a, s: np.concatenate(x, axis=a["axis"]),
    "tnx.cast": lambda x, a, s: x[0],  # dtype is applied from the result type
    "tnx.constant_of_shape": lambda x, a, s: np.broadcast_to(
        a["value"].reshape(()) if "value" in a else np.float32(0), s).copy(),
    "tnx.reshape": lambda x, a, s: x[0].reshape(s),
    "tnx.flatten": lambda x, a, s: x[0].reshape(s),
    "tnx.squeeze": lambda x, a, s: x[0].reshape(s),
    "tnx.unsqueeze": lambda x, a, s: x[0].reshape(s),
    "tnx.transpose": lambda x, a, s: np.transpose(x[0], a["perm"]),
    "tnx.slice": lambda x, a, s: _np_slice(*x),
    "tnx.relu": lambda x, a, s: np.maximum(x[0], 0),
}


def is_constant(value: ir.Value) -> bool:
    op = producer(value)
    return op is not None and op.name == "tnx.constant"


def constant_array(value: ir.Value) -> np.ndarray:
    return current_weights().array(producer(value).attributes["value"])


def make_constant(array: np.ndarray, hint: str, dtype=None) -> ir.Value:
    """A tnx.constant at the current insertion point."""
    array = np.asarray(array, dtype=dtype)
    attr = current_weights().attr(array, hint)
    return create("tnx.constant", [], [attr.type], {"value": attr}).result


def _fold(op: ir.Operation) -> bool:
    result = op.results[0]
    shape = shape_of(result)
    if op.name == "tnx.shape":
        full = np.array(shape_of(op.operands[0]), dtype=np.int64)
        a = attrs_of(op)
        array = full[a.get("start", 0):a.get("end", len(full))]
    elif op.name in FOLDERS and op.operands and all(is_constant(v) for v in op.operands):
        attrs = attrs_of(op)
        if "value" in op.attributes:
            attrs["value"] = current_weights().array(op.attributes["value"])
        array = FOLDERS[op.name]([constant_array(v) for v in op.operands], attrs, shape)
    else:
        return False
    with ir.InsertionPoint(op), op.location:
        new = make_constant(np.asarray(array).astype(dtype_of(result)).reshape(shape), _hint(op))
    result.replace_all_uses_with(new)
    op.erase()
    return True


def _hint(op: ir.Operation) -> str:
    loc = op.location
    return loc.name_str if loc.is_a_name() else "c"


def _fold_batch_norm(op: ir.Operation) -> None:
    x = op.operands[0]
    params = [operand(op, n) for n in ("scale", "b", "input_mean", "input_var")]
    if not all(is_constant(p) for p in params):
        raise CompileError(f"node {_hint(op)} (BatchNormalization): scale, B, mean and var must be "
                           "constants (training-mode BatchNormalization is not supported).")
    gamma, beta, mean, var = (constant_array(p).astype(np.float64) for p in params)
    eps = attrs_of(op)["epsilon"]
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    conv = producer(x)
    with ir.InsertionPoint(op), op.location:
        if (conv is not None and conv.name == "tnx.conv" and len(list(x.uses)) == 1
                and is_constant(operand(conv, "w"))):
            w = constant_array(operand(conv, "w"))
            b = operand(conv, "b")
            bias = constant_array(b).astype(np.float64) if b is not None else np.zeros(w.shape[0])
            new_w = make_constant((w * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(w.dtype), _hint(conv) + "_w")
            new_b = make_constant((bias * scale + shift).astype(w.dtype), _hint(conv) + "_b")
            with conv.location:
                attrs = {n: conv.attributes[n] for n in conv.attributes if n != "operandSegmentSizes"}
                attrs["tnx.folded"] = ir.StringAttr.get(f"BatchNormalization {_hint(op)}")
                new = create("tnx.conv", [conv.operands[0], new_w, new_b], [x.type], attrs).result
            op.results[0].replace_all_uses_with(new)
            op.erase()
            conv.erase()
            return
        rank = len(shape_of(x))
        bshape = (-1,) + (1,) * (rank - 2)
        dt = dtype_of(x)
        s = make_constant(scale.astype(dt).reshape(bshape), _hint(op) + "_scale")
        t = make_constant(shift.astype(dt).reshape(bshape), _hint(op) + "_shift")
        mul = create("tnx.mul", [x, s], [x.type]).result
        new = create("tnx.add", [mul, t], [x.type]).result
    op.results[0].replace_all_uses_with(new)
    op.erase()


def _canonical_view(op: ir.Operation) -> bool:
    """Flatten/Squeeze/Unsqueeze/Reshape(shape) -> tnx.reshape(data) (the type holds the shape)."""
    if op.name == "tnx.reshape" and len(op.operands) == 1:
        return False
    if any(not is_constant(v) for v in op.operands[1:]):
        raise CompileError(f"node {_hint(op)} ({op.name}): the target shape or axes must be "
                           "known at compile time.")
    with ir.InsertionPoint(op), op.location:
        new = create("tnx.reshape", [op.operands[0]], [op.results[0].type]).result
    op.results[0].replace_all_uses_with(new)
    op.erase()
    return True


def _dead(op: ir.Operation) -> bool:
    return op.name.startswith("tnx.") and all(len(list(r.uses)) == 0 for r in op.results)


def simplify(block: ir.Block) -> None:
    """Runs the rewrites to a fixed point over one block."""
    changed = True
    while changed:
        changed = False
        for op in [o.operation for o in block.operations]:
            name = op.name
            if not name.startswith("tnx.") or name == "tnx.constant":
                continue
            if name in ("tnx.identity", "tnx.dropout"):
                op.results[0].replace_all_uses_with(op.operands[0])
                op.erase()
                changed = True
            elif _fold(op):
                changed = True
            elif name == "tnx.batch_normalization":
                _fold_batch_norm(op)
                changed = True
            elif name in VIEWS and _canonical_view(op):
                changed = True
            elif name == "tnx.cast" and dtype_of(op.operands[0]) == dtype_of(op.results[0]):
                op.results[0].replace_all_uses_with(op.operands[0])
                op.erase()
                changed = True
        for op in reversed([o.operation for o in block.operations]):
            if _dead(op):
                op.erase()
                changed = True


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        simplify(fn.regions[0].blocks[0])
