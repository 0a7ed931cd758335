"""tnx-canonicalize: removes Identity and inference Dropout, folds constant subgraphs (Shape
arithmetic, ConstantOfShape weights; a shape computation over dynamic sizes folds into a
`tnx.sizes` of expressions), folds BatchNormalization into the preceding Conv's
weights (or decomposes it into Mul and Add), turns Flatten/Squeeze/Unsqueeze/Reshape into
a shape-only `tnx.reshape`, moves the constant parameters of Slice, Expand, Tile, Pad and
Trilu into attributes, rewrites DepthToSpace/SpaceToDepth as views, and drops dead ops."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
from mlir import ir

from tritonnx.dialects import onnx_op_type, operand_specs
from tritonnx.dialects.builders import (
    attrs_of,
    create,
    dtype_of,
    make_sizes,
    operand,
    producer,
    producer_op,
    shape_of,
    size_values,
    tensor_type,
)
from tritonnx.errors import CompileError
from tritonnx.passes import current_weights, functions, ops
from tritonnx.symbolic import SymbolicSizeError, is_symbolic, smax, smin

NAME = "tnx-canonicalize"

RESHAPES = ("tnx.flatten", "tnx.squeeze", "tnx.unsqueeze", "tnx.reshape")  # views that only change the shape


def evaluate(op: ir.Operation, inputs: list[np.ndarray | None]) -> np.ndarray | None:
    """Evaluates one tnx op on constant inputs with ONNX's reference implementation
    (`onnx.reference`), at the model's opset. None marks an absent optional input.

    A tnx op is its ONNX node plus tritonnx's extensions (TopK's `output`, the canonical
    forms' attributes, MeanVarianceNormalization's `epsilon`): those are turned back into
    the ONNX node that computes the same, or the op is not evaluated (returns None) when
    that node would drop an attribute, lack an input or the evaluator is known wrong."""
    from onnx import defs, helper, numpy_helper

    from tritonnx.dialects.ops import OPS
    from tritonnx.importers.reference import evaluator

    op_type, opset = onnx_op_type(op.name), _opset(op)
    attrs = {k: v for k, v in attrs_of(op).items() if not k.startswith("tnx.")}
    fast = _numpy(op.name, attrs, inputs)
    if fast is not None:
        return fast
    if op.name == "tnx.mean_variance_normalization":  # ONNX's has no epsilon: the formula itself
        assert inputs[0] is not None  # X is MeanVarianceNormalization's one, required input
        x = inputs[0].astype(np.float64)
        axes = tuple(attrs.get("axes", (0, 2, 3)))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        return (x - mean) / np.sqrt(var + attrs.get("epsilon", 1e-9))
    try:
        schema = defs.get_schema(op_type, opset, "")
    except defs.SchemaError:
        return None  # no ONNX op of this name and opset: nothing to evaluate it with
    inputs = list(inputs)
    output = attrs.pop("output", 0) if op.name == "tnx.top_k" else 0
    if op.name == "tnx.top_k" and "k" in attrs:  # canonical form: K back as an input
        inputs = [inputs[0], np.array([attrs.pop("k")], dtype=np.int64)]
    if op.name in ("tnx.arg_max", "tnx.arg_min") and "axes" in attrs:
        attrs["axis"] = attrs.pop("axes")[0]
    formal = [i.name for i in schema.inputs]
    if "axes" in attrs and "axes" in formal and "axes" not in schema.attributes:  # a canonical reduction
        inputs = inputs[:1] + [np.array(attrs.pop("axes"), dtype=np.int64)]
    defaults = OPS[op_type].attrs if op_type in OPS else {}
    for key in list(attrs):
        if key not in schema.attributes:
            if key in defaults and attrs[key] == defaults[key]:
                del attrs[key]  # an importer default this opset's op predates
            else:
                return None  # a tritonnx attribute the ONNX node would silently drop
    for i, f in enumerate(schema.inputs):
        if f.option == defs.OpSchema.FormalParameterOption.Single and (i >= len(inputs) or inputs[i] is None):
            return None  # a canonical form without a required input
    while inputs and inputs[-1] is None:
        inputs.pop()  # absent trailing optional inputs are left out, not named ""
    if "value" in op.attributes:
        attrs["value"] = numpy_helper.from_array(current_weights().array(op.attributes["value"]))
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"out{j}" for j in range(max(output + 1, 1))]
    node = helper.make_node(op_type, names, outs, **attrs)
    feeds = {n: x for n, x in zip(names, inputs) if x is not None}  # the inputs named above
    graph = helper.make_graph(
        [node],
        "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape) for n, x in feeds.items()],
        [helper.make_tensor_value_info(o, 0, None) for o in outs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    results = cast(list[Any], evaluator(model).run(None, feeds))  # a list: no intermediate results asked for
    return np.asarray(results[output])


def _numpy(name: str, attrs: dict, inputs: list) -> np.ndarray | None:
    """The few ops that shape computations fold most (Concat of shape pieces, integer
    Add/Sub/Mul, Equal, Where, Expand, integer Casts) evaluated with numpy, whose semantics
    are ONNX's for them (https://onnx.ai/onnx/operators/: Concat-13, Add-14, Equal-19,
    Where-16, Expand-13, Cast-21 between integer and bool types), without building a
    reference evaluator per op; None for anything else."""
    if any(x is None for x in inputs) or not inputs:
        return None
    ints = all(x.dtype.kind in "iub" for x in inputs)
    if name == "tnx.concat" and len({x.dtype for x in inputs}) == 1 and len({x.ndim for x in inputs}) == 1:
        return np.concatenate(inputs, axis=int(attrs["axis"]))
    if name in ("tnx.add", "tnx.sub", "tnx.mul") and ints and len({x.dtype for x in inputs}) == 1:
        fn = {"tnx.add": np.add, "tnx.sub": np.subtract, "tnx.mul": np.multiply}[name]
        return np.asarray(fn(inputs[0], inputs[1]), dtype=inputs[0].dtype)
    if name == "tnx.equal" and ints:
        return np.equal(inputs[0], inputs[1])
    if name == "tnx.where" and inputs[0].dtype == np.bool_ and inputs[1].dtype == inputs[2].dtype:
        return np.where(inputs[0], inputs[1], inputs[2])
    if name == "tnx.expand" and inputs[1].dtype.kind == "i":
        shape = np.broadcast_shapes(inputs[0].shape, tuple(int(d) for d in inputs[1].reshape(-1)))
        return np.array(np.broadcast_to(inputs[0], shape))
    if name == "tnx.cast" and ints and set(attrs) == {"to"} | ({"saturate"} & set(attrs)):
        from onnx import helper

        to = np.dtype(helper.tensor_dtype_to_np_dtype(int(attrs["to"])))
        return inputs[0].astype(to) if to.kind in "iub" else None
    return None


def _opset(op: ir.Operation) -> int:
    parent = op.parent
    while parent is not None and parent.name != "builtin.module":
        parent = parent.parent
    if parent is not None and "tnx.opset" in parent.attributes:
        return ir.IntegerAttr(parent.attributes["tnx.opset"]).value
    return 21


def is_constant(value: ir.Value) -> bool:
    op = producer(value)
    return op is not None and op.name == "tnx.constant"


def constant_array(value: ir.Value) -> np.ndarray:
    return current_weights().array(producer_op(value).attributes["value"])


def make_constant(array: np.ndarray, hint: str, dtype=None) -> ir.Value:
    """A tnx.constant at the current insertion point."""
    array = np.asarray(array, dtype=dtype)
    attr = current_weights().attr(array, hint)
    return create("tnx.constant", [], [attr.type], {"value": attr}).result


def known_values(value: ir.Value) -> np.ndarray | None:
    """The elements of an integer tensor known at compile time: an integer constant's array,
    or a `tnx.sizes`'s (an object array of ints and SymInts); None otherwise."""
    if is_constant(value):
        array = constant_array(value)
        return array if np.issubdtype(array.dtype, np.integer) else None
    return size_values(value)


def _symbolic(array: np.ndarray) -> bool:
    return array.dtype == object and any(is_symbolic(v) for v in array.reshape(-1))


SIZE_OPS = {  # integer ops of shape computations, on object arrays of sizes (NumPy semantics = ONNX's here)
    "tnx.add": lambda a, b, _: a + b,
    "tnx.sub": lambda a, b, _: a - b,
    "tnx.mul": lambda a, b, _: a * b,
    "tnx.max": lambda a, b, _: np.vectorize(smax, otypes=[object])(a, b),
    "tnx.min": lambda a, b, _: np.vectorize(smin, otypes=[object])(a, b),
    "tnx.equal": lambda a, b, _: np.vectorize(lambda x, y: x == y, otypes=[object])(a, b),
}


def _size_div(a, b):
    """ONNX integer Div (truncation toward zero) of sizes: floor division where both are
    non-negative; a SymInt divisor, or a negative operand with a SymInt, is refused."""
    if not (is_symbolic(a) or is_symbolic(b)):
        q = abs(int(a)) // abs(int(b))
        return q if (int(a) >= 0) == (int(b) > 0) else -q
    if is_symbolic(b) or int(b) <= 0:
        raise SymbolicSizeError(f"Div of sizes {a} / {b}")
    return a // b


def evaluate_sizes(op: ir.Operation, inputs: list[Any]) -> Any:
    """Evaluates a shape computation on sizes (object arrays of ints and SymInts): the
    arithmetic of SIZE_OPS and Div, Neg, Abs, Cast, Identity, Where, Gather, Concat, the
    reshaping views, canonical Slice, ReduceProd, Size. Returns None for any other op (it
    is then computed at run time, or refused where a kernel cannot compute it)."""
    name, a = op.name, attrs_of(op)
    x: Any = inputs[0] if inputs else None
    shape = [int(d) for d in shape_of(op.results[0])]
    if name in SIZE_OPS:
        return SIZE_OPS[name](inputs[0], inputs[1], a)
    if name == "tnx.div":
        return np.vectorize(_size_div, otypes=[object])(inputs[0], inputs[1])
    if name == "tnx.neg":
        return -x
    if name == "tnx.abs":
        return np.vectorize(abs, otypes=[object])(x)
    if name in ("tnx.cast", "tnx.identity") and np.issubdtype(dtype_of(op.results[0]), np.integer):
        return x
    if name == "tnx.where":
        return np.where(inputs[0].astype(bool), inputs[1], inputs[2])
    if name == "tnx.gather" and x is not None:
        idx = np.asarray(inputs[1])
        if _symbolic(idx) if idx.dtype == object else False:
            return None
        axis = a["axis"] + x.ndim if a["axis"] < 0 else a["axis"]
        idx = np.where(idx.astype(np.int64) < 0, idx.astype(np.int64) + x.shape[axis], idx.astype(np.int64))
        return np.take(x, idx, axis=axis)
    if name == "tnx.concat":
        return np.concatenate([inputs[0], inputs[1]], axis=a["axis"])
    if name in RESHAPES:
        return x.reshape(shape)
    if name == "tnx.slice" and len(op.operands) == 1:
        index = [np.arange(n) * st + s for n, s, st in zip(shape, a["starts"], a["steps"])]
        return x[np.ix_(*index)] if shape else x
    if name == "tnx.reduce_prod" and "axes" in op.attributes:
        return np.multiply.reduce(x, axis=tuple(a["axes"]), keepdims=a.get("keepdims", 1) == 1)
    return None


def _fold(op: ir.Operation) -> bool:
    result = op.results[0]
    shape = shape_of(result)
    if any(is_symbolic(d) for d in shape):
        return False  # a tensor whose size is dynamic is computed at run time, not stored as a weight
    array: np.ndarray | None
    if op.name == "tnx.shape":
        full = np.empty(len(shape_of(op.operands[0])), dtype=object)
        full[:] = shape_of(op.operands[0])
        a = attrs_of(op)
        array = full[a.get("start", 0) : a.get("end", len(full))]
    elif op.name == "tnx.size":
        array = np.array(math.prod(shape_of(op.operands[0])), dtype=object)
    elif (
        op.operands
        and all(v is not None and size_values(v) is not None or is_constant(v) for v in op.operands)
        and any(size_values(v) is not None for v in op.operands)
    ):  # a shape computation over dynamic sizes
        inputs = [None if v is None else known_values(v) for v in _positional(op)]
        if any(v is not None and i is None for v, i in zip(_positional(op), inputs)):
            return False  # a float operand: data
        try:
            array = evaluate_sizes(op, [None if i is None else np.asarray(i, dtype=object) for i in inputs])
        except SymbolicSizeError as e:
            raise CompileError(
                f"node {_hint(op)} ({onnx_op_type(op.name)}): {e} cannot be computed over dynamic sizes."
            ) from None
        if array is None:
            return False
    elif op.name in ("tnx.reshape", "tnx.flatten", "tnx.squeeze", "tnx.unsqueeze") and is_constant(op.operands[0]):
        array = constant_array(op.operands[0]).reshape(shape)
    elif op.name == "tnx.constant_of_shape" and is_constant(op.operands[0]):  # weights of old models: fast path
        value = current_weights().array(op.attributes["value"]) if "value" in op.attributes else np.zeros(1, np.float32)
        array = np.full(shape, value.reshape(-1)[0], dtype=value.dtype)
    elif op.name == "tnx.slice" and len(op.operands) == 1:  # canonical form
        if not is_constant(op.operands[0]):
            return False
        a = attrs_of(op)
        index = [np.arange(n) * st + s for n, s, st in zip(shape, a["starts"], a["steps"])]
        array = constant_array(op.operands[0])[np.ix_(*index)] if shape else constant_array(op.operands[0])
    elif op.operands and all(is_constant(v) for v in op.operands):
        inputs = [None if v is None else constant_array(v) for v in _positional(op)]
        try:
            array = evaluate(op, inputs)
        except Exception:  # noqa: BLE001 - what the reference evaluator cannot compute runs as a kernel
            return False
        if array is None or np.size(array) != math.prod(shape):
            return False
    else:
        return False
    with ir.InsertionPoint(op), op.location:
        array = np.asarray(array)
        if array.dtype == object and _symbolic(array):
            new = make_sizes(array.reshape(shape), dtype_of(result))
        else:
            if array.dtype == object:
                array = np.array([int(v) for v in array.reshape(-1)], dtype=np.int64)
            new = make_constant(array.astype(dtype_of(result)).reshape(shape), _hint(op))
    result.replace_all_uses_with(new)
    op.erase()
    return True


def _positional(op: ir.Operation) -> list[ir.Value | None]:
    """The op's operands by position in its IRDL definition, None where an optional is absent."""
    return [operand(op, name) for name, _ in operand_specs()[op.name]]


def _hint(op: ir.Operation) -> str:
    loc = op.location
    return loc.name_str if loc.is_a_name() else "c"


def _fold_batch_norm(op: ir.Operation) -> None:
    x = op.operands[0]
    params = [operand(op, n) for n in ("scale", "b", "input_mean", "input_var")]
    if not all(is_constant(p) for p in params):
        raise CompileError(
            f"node {_hint(op)} (BatchNormalization): scale, B, mean and var must be "
            "constants (training-mode BatchNormalization is not supported)."
        )
    gamma, beta, mean, var = (constant_array(p).astype(np.float64) for p in params)
    eps = attrs_of(op)["epsilon"]
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    conv = producer(x)
    with ir.InsertionPoint(op), op.location:
        if conv is not None and conv.name == "tnx.conv" and len(list(x.uses)) == 1 and is_constant(operand(conv, "w")):
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
    if any(not is_constant(v) and size_values(v) is None for v in op.operands[1:]):
        raise CompileError(f"node {_hint(op)} ({op.name}): the target shape or axes must be known at compile time.")
    with ir.InsertionPoint(op), op.location:
        new = create("tnx.reshape", [op.operands[0]], [op.results[0].type]).result
    op.results[0].replace_all_uses_with(new)
    op.erase()
    return True


def _replace(op: ir.Operation, name: str, operands: list, attrs: dict) -> None:
    with ir.InsertionPoint(op), op.location:
        new = create(name, operands, [op.results[0].type], attrs).result
    op.results[0].replace_all_uses_with(new)
    op.erase()


def _constant_operands(op: ir.Operation, names: tuple[str, ...]) -> dict[str, Any]:
    """Values of the named optional operands (np.ndarray, None where absent) by name: a
    constant's array, or the sizes of a `tnx.sizes` (an object array of ints and SymInts);
    raises CompileError if one is neither."""
    values: dict[str, Any] = {}
    for n in names:
        v = operand(op, n)
        if v is not None and not is_constant(v) and size_values(v) is None:
            raise CompileError(
                f"node {_hint(op)} ({onnx_op_type(op.name)}): input '{n}' must be known at compile time."
            )
        values[n] = None if v is None else constant_array(v) if is_constant(v) else size_values(v)
    return values


def _slice_start(op: ir.Operation, s, e, st, n) -> tuple[int, int]:
    """(start, step) of one sliced axis of size `n` (Slice-13's clamping); with a dynamic
    `n` or `e` the start must still be a number (it is an attribute): a negative start on a
    dynamic axis (x[-k:]) or a negative step over one is refused, naming the node."""
    if not any(is_symbolic(v) for v in (s, e, st, n)):
        first, _, step = slice(int(s), int(e), int(st)).indices(int(n))
        return first, step
    start: Any
    if is_symbolic(st) or int(st) < 0 or is_symbolic(s) and not isinstance(s, int):
        start = None
    else:
        start = s + n if int(s) < 0 and not is_symbolic(s) else s
        if not is_symbolic(n) and not is_symbolic(start):
            start = min(max(int(start), 0), int(n))
    if start is None or is_symbolic(start):
        raise CompileError(
            f"node {_hint(op)} (Slice): its start on an axis of dynamic size {n} depends on that size "
            f"(starts {s}, steps {st}); give the input shapes with `shapes=` (CLI --shape)."
        )
    return max(int(start), 0), int(st)


def _canonical_parameters(op: ir.Operation) -> bool:
    """Slice, Expand, Tile, Pad, Trilu: constant parameter operands become attributes, in
    a normalized form the index maps read directly. Returns whether it rewrote `op`."""
    name = op.name
    data = op.operands[0]
    in_shape, out_shape = shape_of(data), shape_of(op.results[0])
    rank = len(in_shape)
    canonical = {"tnx.slice": "steps", "tnx.pad": "pads", "tnx.trilu": "k", "tnx.resize": "scales"}.get(name)
    if len(op.operands) == 1 and (
        canonical is None or canonical in op.attributes and (name != "tnx.slice" or len(attrs_of(op)["steps"]) == rank)
    ):
        return False
    if name == "tnx.slice":
        if len(op.operands) == 1:
            a = attrs_of(op)
            c = {"starts": a["starts"], "ends": a["ends"], "axes": a.get("axes"), "steps": a.get("steps")}
        else:
            c = _constant_operands(op, ("starts", "ends", "axes", "steps"))
        axes = range(len(c["starts"])) if c["axes"] is None else [int(x) + rank if x < 0 else int(x) for x in c["axes"]]
        steps = [1] * len(c["starts"]) if c["steps"] is None else c["steps"]
        start, step = [0] * rank, [1] * rank
        for ax, s, e, st in zip(axes, c["starts"], c["ends"], steps):
            start[ax], step[ax] = _slice_start(op, s, e, st, in_shape[ax])
        _replace(op, name, [data], {"starts": start, "steps": step})
    elif name in ("tnx.expand", "tnx.tile"):
        _constant_operands(op, ("shape",) if name == "tnx.expand" else ("repeats",))
        _replace(op, name, [data], {})
    elif name == "tnx.pad":
        c = _constant_operands(op, ("pads", "constant_value", "axes"))
        axes = range(rank) if c["axes"] is None else [int(x) + rank if x < 0 else int(x) for x in c["axes"]]
        n = len(list(axes))
        pads = [0] * (2 * rank)
        for i, ax in enumerate(axes):
            pads[ax], pads[rank + ax] = int(c["pads"][i]), int(c["pads"][n + i])
        value = 0.0 if c["constant_value"] is None else float(np.asarray(c["constant_value"]).reshape(-1)[0])
        _replace(op, name, [data], {"pads": pads, "constant_value": value, "mode": attrs_of(op)["mode"]})
    elif name == "tnx.resize":
        c = _constant_operands(op, ("roi", "scales", "sizes"))
        a = attrs_of(op)
        axes = a.get("axes") or list(range(rank))
        axes = [x + rank if x < 0 else x for x in axes]
        given = c["scales"] is not None and np.size(c["scales"])
        scales: list[Any] = [
            None if is_symbolic(o) or is_symbolic(i) else float(o) / i for o, i in zip(out_shape, in_shape)
        ]
        if given:
            for ax, s in zip(axes, np.reshape(c["scales"], -1)):
                scales[ax] = float(s)
        for ax, s in enumerate(scales):
            if s is None and out_shape[ax] == in_shape[ax]:
                scales[ax] = 1.0
            elif s is None:
                raise CompileError(
                    f"node {_hint(op)} (Resize): its scale on axis {ax} is {out_shape[ax]} / {in_shape[ax]}, "
                    "a ratio of dynamic sizes; give `scales` or the input shapes (`shapes=`, CLI --shape)."
                )
        roi = [0.0] * rank + [1.0] * rank
        if c["roi"] is not None and np.size(c["roi"]):
            r = [float(v) for v in np.reshape(c["roi"], -1)]
            for i, ax in enumerate(axes):
                roi[ax], roi[rank + ax] = r[i], r[len(axes) + i]
        if a["mode"] not in ("nearest", "linear", "cubic") or a.get("antialias", 0):
            raise CompileError(
                f"node {_hint(op)} (Resize): mode {a['mode']!r}"
                f"{' with antialias' if a.get('antialias', 0) else ''} is not supported yet."
            )
        keep = {
            k: a[k]
            for k in (
                "coordinate_transformation_mode",
                "extrapolation_value",
                "mode",
                "nearest_mode",
                "cubic_coeff_a",
                "exclude_outside",
            )
        }
        _replace(op, name, [data], {**keep, "scales": scales, "roi": roi})
    elif name == "tnx.trilu":
        c = _constant_operands(op, ("k",))
        k = 0 if c["k"] is None else int(np.asarray(c["k"]).reshape(-1)[0])
        _replace(op, name, [data], {"k": k, "upper": attrs_of(op)["upper"]})
    return True


def _canonical_reduce(op: ir.Operation) -> bool:
    """ReduceX(data, axes): constant axes become a sorted, non-negative `axes` attribute (all
    axes when empty, unless noop_with_empty_axes, where the op is the identity)."""
    if "axes" in op.attributes and len(op.operands) == 1:
        return False
    rank = len(shape_of(op.operands[0]))
    a = attrs_of(op)
    if op.name in ("tnx.arg_max", "tnx.arg_min"):
        axes = [a["axis"] + rank if a["axis"] < 0 else a["axis"]]
    else:
        c = _constant_operands(op, ("axes",))
        axes = [] if c["axes"] is None else [int(x) + rank if x < 0 else int(x) for x in np.reshape(c["axes"], -1)]
        if not axes and a.get("noop_with_empty_axes", 0):
            op.results[0].replace_all_uses_with(op.operands[0])
            op.erase()
            return True
        axes = sorted(set(axes)) or list(range(rank))
    attrs = {k: v for k, v in a.items() if not k.startswith("tnx.") and k != "axis"}
    attrs["axes"] = axes
    _replace(op, op.name, [op.operands[0]], attrs)
    return True


def _normalization(op: ir.Operation) -> None:
    """Layer/Instance/Group/LpNormalization as MeanVarianceNormalization (or a reduction)
    followed by pointwise Mul/Add (or Div), which fuse into one kernel's epilogue."""
    x = op.operands[0]
    dims = shape_of(x)
    rank = len(dims)
    a = attrs_of(op)
    xt = x.type
    et = ir.RankedTensorType(xt).element_type

    def tensor(shape):
        return tensor_type(shape, et)

    def channel_param(v):  # [C] -> [C, 1, ..., 1] so it broadcasts against NCHW
        return create("tnx.reshape", [v], [tensor([dims[1]] + [1] * (rank - 2))]).result

    with ir.InsertionPoint(op), op.location:
        if op.name == "tnx.lp_normalization":
            axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]
            norm_dims = [1 if d == axis else n for d, n in enumerate(dims)]
            name = "tnx.reduce_l2" if a["p"] == 2 else "tnx.reduce_l1"
            norm = create(name, [x], [tensor(norm_dims)], {"axes": [axis], "keepdims": 1}).result
            tiny = make_constant(np.array(np.finfo(np.float32).tiny, dtype=dtype_of(x)), _hint(op) + "_tiny")
            norm = create("tnx.max", [norm, tiny], [tensor(norm_dims)]).result  # a zero vector stays zero
            new = create("tnx.div", [x, norm], [xt]).result
        elif op.name == "tnx.layer_normalization":
            axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]
            y = create(
                "tnx.mean_variance_normalization", [x], [xt], {"axes": list(range(axis, rank)), "epsilon": a["epsilon"]}
            ).result
            new = create("tnx.mul", [y, operand(op, "scale")], [xt]).result
            if operand(op, "b") is not None:
                new = create("tnx.add", [new, operand(op, "b")], [xt]).result
        elif op.name == "tnx.instance_normalization":
            y = create(
                "tnx.mean_variance_normalization", [x], [xt], {"axes": list(range(2, rank)), "epsilon": a["epsilon"]}
            ).result
            new = create("tnx.mul", [y, channel_param(operand(op, "scale"))], [xt]).result
            new = create("tnx.add", [new, channel_param(operand(op, "b"))], [xt]).result
        else:  # group_normalization
            g = a["num_groups"]
            grouped = tensor([dims[0], g, math.prod(dims[1:]) // g])
            r = create("tnx.reshape", [x], [grouped]).result
            y = create("tnx.mean_variance_normalization", [r], [grouped], {"axes": [2], "epsilon": a["epsilon"]}).result
            y = create("tnx.reshape", [y], [xt]).result
            new = create("tnx.mul", [y, channel_param(operand(op, "scale"))], [xt]).result
            new = create("tnx.add", [new, channel_param(operand(op, "bias"))], [xt]).result
    op.results[0].replace_all_uses_with(new)
    op.erase()


def _scalar_constant(v: ir.Value) -> float | None:
    if not is_constant(v):
        return None
    c = np.asarray(constant_array(v))
    return float(c.reshape(-1)[0]) if c.size == 1 else None


def _decomposed_layer_norm(div: ir.Operation) -> bool:
    """The LayerNormalization older exporters spell out, (x - mean) / sqrt(mean((x - mean)^2)
    + eps) over trailing axes (ReduceMean, Sub, Pow or Mul, ReduceMean, Add, Sqrt, Div), is
    a MeanVarianceNormalization: one kernel with the scale and bias Mul/Add that follow."""
    d, s = div.operands
    sub, sqrt = producer(d), producer(s)
    if sub is None or sub.name != "tnx.sub" or sqrt is None or sqrt.name != "tnx.sqrt":
        return False
    x, mean = sub.operands
    rm1, add = producer(mean), producer(sqrt.operands[0])
    if rm1 is None or rm1.name != "tnx.reduce_mean" or rm1.operands[0] != x or add is None or add.name != "tnx.add":
        return False
    var, eps = (
        (add.operands[0], add.operands[1])
        if _scalar_constant(add.operands[1]) is not None
        else (add.operands[1], add.operands[0])
    )
    epsilon, rm2 = _scalar_constant(eps), producer(var)
    if epsilon is None or rm2 is None or rm2.name != "tnx.reduce_mean":
        return False
    sq = producer(rm2.operands[0])
    if sq is None or not (
        (sq.name == "tnx.pow" and sq.operands[0] == d and _scalar_constant(sq.operands[1]) == 2.0)
        or (sq.name == "tnx.mul" and sq.operands[0] == d and sq.operands[1] == d)
    ):
        return False
    rank = len(shape_of(x))
    a1, a2 = attrs_of(rm1), attrs_of(rm2)
    axes = a1.get("axes")
    if (
        axes is None
        or a2.get("axes") != axes
        or axes != list(range(rank - len(axes), rank))
        or not a1.get("keepdims", 1)
        or not a2.get("keepdims", 1)
        or shape_of(div.results[0]) != shape_of(x)
    ):
        return False
    with ir.InsertionPoint(div), div.location:
        y = create(
            "tnx.mean_variance_normalization", [x], [div.results[0].type], {"axes": axes, "epsilon": epsilon}
        ).result
    div.results[0].replace_all_uses_with(y)
    div.erase()
    return True


def _matmul_vectors(op: ir.Operation) -> bool:
    """MatMul with a 1-D operand: the vector becomes a 1-row (or 1-column) matrix and the
    result is reshaped back, per the spec's NumPy matmul semantics."""
    a, b = op.operands
    if len(shape_of(a)) > 1 and len(shape_of(b)) > 1:
        return False
    et = ir.RankedTensorType(op.results[0].type).element_type
    with ir.InsertionPoint(op), op.location:
        if len(shape_of(a)) == 1:
            a = create("tnx.reshape", [a], [tensor_type([1] + shape_of(a), et)]).result
        if len(shape_of(b)) == 1:
            b = create("tnx.reshape", [b], [tensor_type(shape_of(b) + [1], et)]).result
        out = list(np.broadcast_shapes(tuple(shape_of(a)[:-2]), tuple(shape_of(b)[:-2]))) + [
            shape_of(a)[-2],
            shape_of(b)[-1],
        ]
        mm = create("tnx.mat_mul", [a, b], [tensor_type(out, et)]).result
        new = create("tnx.reshape", [mm], [op.results[0].type]).result
    op.results[0].replace_all_uses_with(new)
    op.erase()
    return True


def _einsum(op: ir.Operation) -> None:
    """Einsum as views, MatMul and ReduceSum: batch letters (in both operands and the
    output), contracted letters (in both, not the output) and free letters."""
    eq = attrs_of(op)["equation"].replace(" ", "")
    lhs, _, out = eq.partition("->")
    terms = lhs.split(",")
    if not out and "->" not in eq:
        out = "".join(sorted(c for c in set("".join(terms)) if "".join(terms).count(c) == 1))
    if "." in eq or any(len(set(t)) != len(t) for t in terms) or len(terms) > 2:
        raise CompileError(
            f"node {_hint(op)} (Einsum): equation {eq!r} is not supported yet "
            "(ellipses, repeated letters in one operand, or more than two operands)."
        )
    et = ir.RankedTensorType(op.results[0].type).element_type
    sizes: dict[str, int] = {}
    for term, v in zip(terms, op.operands):
        sizes.update(zip(term, shape_of(v)))

    def tensor(letters):
        return tensor_type([sizes[c] for c in letters], et)

    def arrange(v, have, want):
        if have != want:
            v = create("tnx.transpose", [v], [tensor(want)], {"perm": [have.index(c) for c in want]}).result
        return v

    def reduce(v, have, keep):
        drop = [i for i, c in enumerate(have) if c not in keep]
        if drop:
            v = create(
                "tnx.reduce_sum", [v], [tensor("".join(c for c in have if c in keep))], {"axes": drop, "keepdims": 0}
            ).result
        return v, "".join(c for c in have if c in keep)

    def reshape(v, dims):
        if shape_of(v) == list(dims):
            return v
        return create("tnx.reshape", [v], [tensor_type(dims, et)]).result

    with ir.InsertionPoint(op), op.location:
        if len(terms) == 1:
            v, have = reduce(op.operands[0], terms[0], out)
            new = arrange(v, have, out)
        else:
            (ta, tb), (a, b) = terms, op.operands
            a, ta = reduce(a, ta, tb + out)  # letters only in one operand and not the output sum out
            b, tb = reduce(b, tb, ta + out)
            batch = "".join(c for c in ta if c in tb and c in out)
            contract = "".join(c for c in ta if c in tb and c not in out)
            free_a = "".join(c for c in ta if c not in tb)
            free_b = "".join(c for c in tb if c not in ta)
            n = [math.prod(sizes[c] for c in s) for s in (batch, free_a, contract, free_b)]
            lead = [sizes[c] for c in batch]  # batch dims stay dims: "bhqd,bhkd->bhqk" is a 4-D MatMul
            a = reshape(arrange(a, ta, batch + free_a + contract), lead + [n[1], n[2]])
            b = reshape(arrange(b, tb, batch + contract + free_b), lead + [n[2], n[3]])
            mm = create("tnx.mat_mul", [a, b], [tensor_type(lead + [n[1], n[3]], et)]).result
            new = arrange(reshape(mm, [sizes[c] for c in batch + free_a + free_b]), batch + free_a + free_b, out)
    op.results[0].replace_all_uses_with(new)
    op.erase()


def _depth_space(op: ir.Operation) -> None:
    """DepthToSpace / SpaceToDepth as Reshape, Transpose, Reshape (views, per the spec)."""
    n, c, h, w = shape_of(op.operands[0])
    a = attrs_of(op)
    bs = a["blocksize"]
    et = ir.RankedTensorType(op.results[0].type).element_type
    if op.name == "tnx.depth_to_space":
        if a.get("mode", "DCR") == "DCR":
            mid, perm = [n, bs, bs, c // (bs * bs), h, w], [0, 3, 4, 1, 5, 2]
        else:
            mid, perm = [n, c // (bs * bs), bs, bs, h, w], [0, 1, 4, 2, 5, 3]
    elif a.get("mode", "DCR") == "CRD":  # the inverse of DepthToSpace's CRD
        mid, perm = [n, c, h // bs, bs, w // bs, bs], [0, 1, 3, 5, 2, 4]
    else:
        mid, perm = [n, c, h // bs, bs, w // bs, bs], [0, 3, 5, 1, 2, 4]
    with ir.InsertionPoint(op), op.location:
        r = create("tnx.reshape", [op.operands[0]], [tensor_type(mid, et)]).result
        t = create("tnx.transpose", [r], [tensor_type([mid[p] for p in perm], et)], {"perm": perm}).result
        new = create("tnx.reshape", [t], [op.results[0].type]).result
    op.results[0].replace_all_uses_with(new)
    op.erase()


def _dead(op: ir.Operation) -> bool:
    return op.name.startswith("tnx.") and all(len(list(r.uses)) == 0 for r in op.results)


def _constant_of_shape_sizes(op: ir.Operation) -> bool:
    """ConstantOfShape of a dynamic size (torch's zero initial states of an RNN over a
    dynamic batch) as an Expand of its one-element value: a view, which its readers index.
    Its result type gives the shape (as for a canonical Expand): the shape operand only has
    to be known."""
    value = current_weights().array(op.attributes["value"]) if "value" in op.attributes else np.zeros(1, np.float32)
    result = op.results[0]
    rank = len(shape_of(result))
    with ir.InsertionPoint(op), op.location:
        scalar = make_constant(value.reshape([1] * rank).astype(dtype_of(result)), _hint(op))
        new = create("tnx.expand", [scalar], [result.type]).result
    result.replace_all_uses_with(new)
    op.erase()
    return True


def _rewrite(op: ir.Operation) -> bool:
    """Applies the first rewrite that matches `op`; returns whether the IR changed. Raises
    CompileError where an input that must be constant is not (yet)."""
    name = op.name
    if name == "tnx.dropout" and operand(op, "training_mode") is not None:
        mode = _constant_operands(op, ("training_mode",))["training_mode"]
        if bool(np.asarray(mode).reshape(-1)[0]):
            raise CompileError(f"node {_hint(op)} (Dropout): training mode (random masking) is not supported.")
    if name in ("tnx.identity", "tnx.dropout"):
        op.results[0].replace_all_uses_with(op.operands[0])
        op.erase()
        return True
    if _fold(op):
        return True
    if name == "tnx.div" and _decomposed_layer_norm(op):
        return True
    if name == "tnx.batch_normalization":
        _fold_batch_norm(op)
        return True
    if name == "tnx.reshape" and len(op.operands) == 1 and op.operands[0].type == op.results[0].type:
        op.results[0].replace_all_uses_with(op.operands[0])  # a reshape to the same shape
        op.erase()
        return True
    if name in RESHAPES:
        return _canonical_view(op)
    if name in ("tnx.slice", "tnx.expand", "tnx.tile", "tnx.pad", "tnx.trilu", "tnx.resize"):
        return _canonical_parameters(op)
    if name.startswith("tnx.reduce_") or name in ("tnx.arg_max", "tnx.arg_min"):
        return _canonical_reduce(op)
    if name in (
        "tnx.layer_normalization",
        "tnx.instance_normalization",
        "tnx.group_normalization",
        "tnx.lp_normalization",
    ):
        _normalization(op)
        return True
    if name in ("tnx.cum_sum", "tnx.cum_prod") and len(op.operands) == 2:
        axis = int(np.asarray(_constant_operands(op, ("axis",))["axis"]).reshape(-1)[0])
        rank = len(shape_of(op.operands[0]))
        _replace(
            op,
            name,
            [op.operands[0]],
            {
                **{k: v for k, v in attrs_of(op).items() if not k.startswith("tnx.")},
                "axis": axis + rank if axis < 0 else axis,
            },
        )
        return True
    if (
        name == "tnx.constant_of_shape"
        and any(is_symbolic(d) for d in shape_of(op.results[0]))
        and (is_constant(op.operands[0]) or size_values(op.operands[0]) is not None)
    ):
        return _constant_of_shape_sizes(op)
    if name == "tnx.mat_mul":
        return _matmul_vectors(op)
    if name == "tnx.top_k" and "k" not in op.attributes:
        k = int(np.asarray(_constant_operands(op, ("k",))["k"]).reshape(-1)[0])
        _replace(
            op, name, [op.operands[0]], {**{a: v for a, v in attrs_of(op).items() if not a.startswith("tnx.")}, "k": k}
        )
        return True
    if name == "tnx.one_hot" and "depth" not in op.attributes:
        depth = int(np.asarray(_constant_operands(op, ("depth",))["depth"]).reshape(-1)[0])
        rank = len(shape_of(op.results[0]))
        axis = attrs_of(op)["axis"]
        _replace(
            op,
            name,
            [op.operands[0], None, op.operands[2]],
            {"depth": depth, "axis": axis + rank if axis < 0 else axis},
        )
        return True
    if (
        name == "tnx.range"
        and operand(op, "limit") is not None
        and any(is_symbolic(d) for d in shape_of(op.results[0]))
    ):
        _replace(op, name, [op.operands[0], None, op.operands[2]], {})  # a dynamic length: the type gives it
        return True
    if name in ("tnx.depth_to_space", "tnx.space_to_depth"):
        _depth_space(op)
        return True
    if name == "tnx.einsum":
        _einsum(op)
        return True
    if name == "tnx.cast_like":  # the second operand only names the type: a Cast to it
        from onnx import helper

        _replace(
            op,
            "tnx.cast",
            [op.operands[0]],
            {
                "to": helper.np_dtype_to_tensor_dtype(dtype_of(op.results[0])),
                "saturate": attrs_of(op).get("saturate", 1),
            },
        )
        return True
    if name == "tnx.cast" and dtype_of(op.operands[0]) == dtype_of(op.results[0]):
        op.results[0].replace_all_uses_with(op.operands[0])
        op.erase()
        return True
    return False


def simplify(block: ir.Block) -> None:
    """Runs the rewrites to a fixed point over one block. A rewrite that needs a constant
    input may wait for that input to fold; what still cannot be rewritten then is an error."""
    changed = True
    while changed:
        changed = False
        for op in ops(block):
            if op.name.startswith("tnx.") and op.name != "tnx.constant":
                try:
                    changed |= _rewrite(op)
                except CompileError:
                    pass  # reported below if folding never makes its input constant
        for op in reversed(ops(block)):
            if _dead(op):
                op.erase()
                changed = True
    for op in ops(block):
        if op.name.startswith("tnx.") and op.name != "tnx.constant":
            _rewrite(op)


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        simplify(fn.regions[0].blocks[0])
