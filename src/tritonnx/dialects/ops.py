"""The tnx op set: one entry per ONNX operator tritonnx imports.

Each entry gives the operand names (the spec's, `?` marks an optional one), the attribute
defaults at the internal opset (None: required or derived at import), the op's kind for
fusion, and the spec page it follows (https://onnx.ai/onnx/operators/, version in `doc`).
Kinds: dot (Conv/Gemm/MatMul anchors), reduce (pool, reduction and normalization
anchors), pointwise, stencil (pointwise, but reads neighbours of its input: starts a
kernel), view (index maps on loads), fold (evaluated or rewritten at compile time),
constant. An anchor (dot or reduce) also names its kernel kind: the template that lowers
the kernel it anchors (`tnx.kind`: conv, gemm, pool, softmax, norm, reduce, ...).

Derived by tnx op name: KIND (fusion kind), KERNEL_KIND (anchor -> kernel kind),
ONNX_NAME, and the tuples DOT, REDUCE, POINTWISE and VIEWS (ops of that kind).

`tnx.irdl.mlir` is generated from this table: `python -m tritonnx.dialects.ops`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class OpDef:
    operands: tuple[str, ...]
    kind: str
    doc: str
    attrs: dict = field(default_factory=dict)
    variadic: str | None = None  # the binary tnx op an N-ary form folds into (Concat, Sum, ...)
    params: tuple[int, ...] | None = None  # operands needed at compile time, where the kind does not say
    kernel: str | None = None  # an anchor's kernel kind: the template that lowers its kernel

    @property
    def parameters(self) -> tuple[int, ...]:
        """Positions of the operands that must be known at compile time (shapes, axes,
        pads, scales...): every operand but the first of a view, fold, reduce or stencil
        op (Gather's and GatherElements' indices are data: they are loaded)."""
        if self.params is not None:
            return self.params
        if (
            self.kind in ("view", "fold", "reduce", "stencil")
            and self.variadic is None
            and self.operands[1:2] != ("indices",)
        ):
            return tuple(range(1, len(self.operands)))
        return ()


def _pw(operands, doc, **attrs):
    return OpDef(tuple(operands), "pointwise", doc, attrs)


UNARY = (
    "Abs",
    "Acosh",
    "Asinh",
    "Atanh",
    "Ceil",
    "Cos",
    "Cosh",
    "Erf",
    "Exp",
    "Floor",
    "IsNaN",
    "Log",
    "Neg",
    "Not",
    "Reciprocal",
    "Relu",
    "Round",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Tan",
    "Tanh",
    "Mish",
    "HardSwish",
    "BitwiseNot",
)
BINARY = (
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
)

OPS: dict[str, OpDef] = {
    "Constant": OpDef((), "constant", "Constant-21: `value` holds a dense or dense_resource attribute."),
    # tritonnx's own: a small integer tensor of sizes that depend on the model's symbols (a
    # Shape computation's result): `exprs` holds each element's expression; no ONNX node
    "Sizes": OpDef((), "constant", "tritonnx: integer sizes over the model's symbols, `exprs` per element."),
    "Empty": OpDef(
        (), "constant", "tritonnx: a kernel's destination buffer (an allocation: its type gives the shape)."
    ),
    "Conv": OpDef(
        ("X", "W", "B?"),
        "dot",
        "Conv-11: NCHW convolution with groups, strides, pads, dilations.",
        dict(auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None),
        kernel="conv",
    ),
    "ConvTranspose": OpDef(
        ("X", "W", "B?"),
        "dot",
        "ConvTranspose-11: implicit GEMM over the input positions that reach each output.",
        dict(
            auto_pad="NOTSET",
            dilations=None,
            group=1,
            kernel_shape=None,
            output_padding=None,
            output_shape=None,
            pads=None,
            strides=None,
        ),
        kernel="conv_transpose",
    ),
    "Gemm": OpDef(
        ("A", "B", "C?"),
        "dot",
        "Gemm-13: alpha * A' B' + beta * C.",
        dict(alpha=1.0, beta=1.0, transA=0, transB=0),
        kernel="gemm",
    ),
    "MatMul": OpDef(
        ("A", "B"), "dot", "MatMul-13, batch dims broadcast (1-D operands become matrices).", kernel="mat_mul"
    ),
    "BatchNormalization": OpDef(
        ("X", "scale", "B", "input_mean", "input_var"),
        "fold",
        "BatchNormalization-15: inference mode folded into Conv or decomposed; training mode "
        "(batch statistics, running mean and variance) decomposed by the importer.",
        dict(epsilon=1e-5, momentum=0.9, training_mode=0),
    ),
    "MaxPool": OpDef(
        ("X",),
        "reduce",
        "MaxPool-12.",
        dict(
            auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, pads=None, storage_order=0, strides=None
        ),
        kernel="pool",
    ),
    "AveragePool": OpDef(
        ("X",),
        "reduce",
        "AveragePool-19.",
        dict(
            auto_pad="NOTSET",
            ceil_mode=0,
            count_include_pad=0,
            dilations=None,
            kernel_shape=None,
            pads=None,
            strides=None,
        ),
        kernel="pool",
    ),
    "GlobalAveragePool": OpDef(("X",), "reduce", "GlobalAveragePool-1.", kernel="pool"),
    "LpPool": OpDef(
        ("X",),
        "reduce",
        "LpPool-22.",
        dict(auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, p=2, pads=None, strides=None),
        kernel="pool",
    ),
    "GlobalLpPool": OpDef(("X",), "reduce", "GlobalLpPool-2.", dict(p=2), kernel="pool"),
    "GlobalMaxPool": OpDef(("X",), "reduce", "GlobalMaxPool-1.", kernel="pool"),
    "Softmax": OpDef(("input",), "reduce", "Softmax-13 along one axis.", dict(axis=-1), kernel="softmax"),
    "LogSoftmax": OpDef(("input",), "reduce", "LogSoftmax-13 along one axis.", dict(axis=-1), kernel="softmax"),
    "MeanVarianceNormalization": OpDef(
        ("X",),
        "reduce",
        "MeanVarianceNormalization-13: (X - mean) / sqrt(var + epsilon) over `axes`; "
        "`epsilon` (default 1e-9, the spec's) is a tritonnx extension the "
        "normalizations below decompose into.",
        dict(axes=[0, 2, 3], epsilon=1e-9),
        kernel="norm",
    ),
    "LayerNormalization": OpDef(
        ("X", "Scale", "B?"),
        "fold",
        "LayerNormalization-17: decomposed into MeanVarianceNormalization, Mul, Add.",
        dict(axis=-1, epsilon=1e-5, stash_type=1),
    ),
    "InstanceNormalization": OpDef(
        ("input", "scale", "B"),
        "fold",
        "InstanceNormalization-6: decomposed into MeanVarianceNormalization, Mul, Add.",
        dict(epsilon=1e-5),
    ),
    "GroupNormalization": OpDef(
        ("X", "scale", "bias"),
        "fold",
        "GroupNormalization-21: decomposed into Reshape, MeanVarianceNormalization, Reshape, Mul, Add.",
        dict(epsilon=1e-5, num_groups=None, stash_type=1),
    ),
    "LpNormalization": OpDef(
        ("input",), "fold", "LpNormalization-1: decomposed into ReduceL1/L2 and Div.", dict(axis=-1, p=2)
    ),
    "LRN": OpDef(
        ("X",),
        "stencil",
        "LRN-13: each output reads `size` channels of its input, so it starts a "
        "kernel of its own (it cannot be an epilogue).",
        dict(alpha=0.0001, beta=0.75, bias=1.0, size=None),
    ),
    "Hardmax": OpDef(("input",), "reduce", "Hardmax-13 along one axis.", dict(axis=-1), kernel="softmax"),
    "CumSum": OpDef(
        ("x", "axis?"), "reduce", "CumSum-14 (constant axis).", dict(exclusive=0, reverse=0), kernel="softmax"
    ),
    "CumProd": OpDef(
        ("x", "axis?"), "reduce", "CumProd-26 (constant axis).", dict(exclusive=0, reverse=0), kernel="softmax"
    ),
    "OneHot": OpDef(
        ("indices", "depth?", "values"),
        "pointwise",
        "OneHot-11: by index. Canonical form: `depth` as an attribute.",
        dict(axis=-1),
        params=(1,),
    ),
    "Einsum": OpDef(
        ("A", "B?"),
        "fold",
        "Einsum-12, one or two operands without repeated letters in one "
        "operand: rewritten as Transpose, Reshape, MatMul and ReduceSum.",
        dict(equation=None),
        variadic=None,
    ),
    "TopK": OpDef(
        ("X", "K?"),
        "reduce",
        "TopK-11 along one axis; imported as one op per used output "
        "(`output` = 0 for Values, 1 for Indices). Canonical form: `k` as an attribute.",
        dict(axis=-1, largest=1, sorted=1),
        kernel="top_k",
    ),
    # recurrent layers: the importer computes X·W^T + Wb for all steps as one MatMul (`XW`,
    # [num_directions, seq*batch, gates*hidden]) and the recurrence runs as one kernel; the
    # result packs Y ([seq, num_directions, batch, hidden]) then Y_h (and Y_c) along axis 0
    **{
        name: OpDef(
            ("XW", "R", "B?", "sequence_lens?", "initial_h?") + (("initial_c?", "P?") if name == "LSTM" else ()),
            "reduce",
            f"{name}-22 after its input projection (tritonnx form: XW = X·W^T + Wb; "
            "the result is Y, Y_h" + (", Y_c" if name == "LSTM" else "") + " stacked on axis 0, layout 0).",
            dict(activation_alpha=None, activation_beta=None, activations=None, clip=None, direction="forward")
            | (dict(input_forget=0) if name == "LSTM" else {})
            | (dict(linear_before_reset=0) if name == "GRU" else {}),
            params=(),
            kernel="recurrence",
        )
        for name in ("LSTM", "GRU", "RNN")
    },
    "ArgMax": OpDef(("data",), "reduce", "ArgMax-13.", dict(axis=0, keepdims=1, select_last_index=0), kernel="reduce"),
    "ArgMin": OpDef(("data",), "reduce", "ArgMin-13.", dict(axis=0, keepdims=1, select_last_index=0), kernel="reduce"),
    "Clip": _pw(("input", "min?", "max?"), "Clip-13."),
    "Where": _pw(("condition", "X", "Y"), "Where-16."),
    "Mod": _pw(("A", "B"), "Mod-13: fmod=0 takes the divisor's sign, fmod=1 the dividend's.", fmod=0),
    "PRelu": _pw(("X", "slope"), "PRelu-16."),
    "LeakyRelu": _pw(("X",), "LeakyRelu-16.", alpha=0.01),
    "Elu": _pw(("X",), "Elu-6.", alpha=1.0),
    "Celu": _pw(("X",), "Celu-12.", alpha=1.0),
    "Selu": _pw(("X",), "Selu-6.", alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    "ThresholdedRelu": _pw(("X",), "ThresholdedRelu-10.", alpha=1.0),
    "HardSigmoid": _pw(("X",), "HardSigmoid-6.", alpha=0.2, beta=0.5),
    "Gelu": _pw(("X",), "Gelu-20.", approximate="none"),
    "Shrink": _pw(("input",), "Shrink-9.", bias=0.0, lambd=0.5),
    "IsInf": _pw(("X",), "IsInf-20.", detect_negative=1, detect_positive=1),
    "Cast": _pw(("input",), "Cast-21 (saturate applies to float8 only).", saturate=1),
    "BitCast": _pw(("input",), "BitCast-26: the input's bits as type `to`, an element of the same size.", to=None),
    "Acos": _pw(("input",), "Acos-22: 2 atan(sqrt((1 - x) / (1 + x))), exact at x = -1 and 1."),
    "Asin": _pw(("input",), "Asin-22: atan(x / sqrt((1 - x)(1 + x))), +-pi/2 at x = +-1."),
    "Atan": _pw(
        ("input",), "Atan-22: range reduction and Cephes' minimax polynomial (atanf; atan's rational for f64)."
    ),
    "CastLike": _pw(("input", "target_type"), "CastLike-21.", saturate=1),
    "QuantizeLinear": OpDef(
        ("x", "y_scale", "y_zero_point?"),
        "pointwise",
        "QuantizeLinear-21: per-tensor, per-axis or blocked scale; integer outputs.",
        dict(axis=1, block_size=0, output_dtype=0, saturate=1, precision=0),
    ),
    "DequantizeLinear": OpDef(
        ("x", "x_scale", "x_zero_point?"),
        "pointwise",
        "DequantizeLinear-21: per-tensor, per-axis or blocked scale.",
        dict(axis=1, block_size=0, output_dtype=0),
    ),
    "BitShift": _pw(("X", "Y"), "BitShift-11 (unsigned integers).", direction=None),
    "Max": OpDef(("A", "B"), "pointwise", "Max-13, N-ary: folds into a chain.", variadic="Max"),
    "Min": OpDef(("A", "B"), "pointwise", "Min-13, N-ary: folds into a chain.", variadic="Min"),
    "Sum": OpDef(("A", "B"), "pointwise", "Sum-13, N-ary: imported as a chain of Add.", variadic="Add"),
    "Mean": OpDef(("A", "B"), "pointwise", "Mean-13, N-ary: imported as a chain of Add, then Div.", variadic="Add"),
    "Split": OpDef(
        ("input", "split?"), "view", "Split-18: imported as one Slice per output.", dict(axis=0, num_outputs=None)
    ),
    "Flatten": OpDef(("input",), "view", "Flatten-21: a view.", dict(axis=1)),
    "Reshape": OpDef(
        ("data", "shape?"),
        "view",
        "Reshape-21: a view. Canonical form has no `shape` operand: the result type says it.",
        dict(allowzero=0),
    ),
    "Squeeze": OpDef(("data", "axes?"), "view", "Squeeze-21: a view."),
    "Unsqueeze": OpDef(("data", "axes?"), "view", "Unsqueeze-21: a view."),
    "Transpose": OpDef(("data",), "view", "Transpose-21: a view.", dict(perm=None)),
    "Concat": OpDef(
        ("head", "tail"),
        "view",
        "Concat-13 of two tensors; the importer folds N-ary Concat into a chain.",
        dict(axis=None),
        variadic="Concat",
    ),
    "Identity": OpDef(("input",), "fold", "Identity-21: removed by canonicalize."),
    "Dropout": OpDef(
        ("data", "ratio?", "training_mode?"),
        "fold",
        "Dropout-13/22, inference mode: the identity (the importer makes its mask, all true).",
        dict(seed=0),
    ),
    "ConstantOfShape": OpDef(("input",), "fold", "ConstantOfShape-21.", params=(0,)),
    "Shape": OpDef(("data",), "fold", "Shape-21.", dict(start=0)),
    "Size": OpDef(("data",), "fold", "Size-21."),
    "Gather": OpDef(("data", "indices"), "view", "Gather-13: an index map that loads its indices.", dict(axis=0)),
    "GatherElements": OpDef(("data", "indices"), "view", "GatherElements-13: an index map.", dict(axis=0)),
    "GatherND": OpDef(
        ("data", "indices"), "view", "GatherND-13: an index map that loads its indices.", dict(batch_dims=0)
    ),
    "ScatterElements": OpDef(
        ("data", "indices", "updates"),
        "stencil",
        "ScatterElements-18 (reduction none, add, mul, max, min): each output element combines, "
        "in update order, the updates along `axis` whose index hits it.",
        dict(axis=0, reduction="none"),
    ),
    "ScatterND": OpDef(
        ("data", "indices", "updates"),
        "stencil",
        "ScatterND-18 (reduction none, add, mul, max, min): each output element combines, in "
        "update order, the updates whose index tuple hits it.",
        dict(reduction="none"),
    ),
    "TensorScatter": OpDef(
        ("past_cache", "update", "write_indices?"),
        "stencil",
        "TensorScatter-24 (linear, circular): an index map choosing the update or the cache.",
        dict(axis=-2, mode="linear"),
        params=(),
    ),
    "Slice": OpDef(
        ("data", "starts?", "ends?", "axes?", "steps?"),
        "view",
        "Slice-13: a view. Canonical form: constant operands moved to attributes.",
    ),
    "Expand": OpDef(("input", "shape?"), "view", "Expand-13: a broadcasting view."),
    "Tile": OpDef(("input", "repeats?"), "view", "Tile-13: a view (indices modulo the input's shape)."),
    "Pad": OpDef(
        ("data", "pads?", "constant_value?", "axes?"),
        "view",
        "Pad-21 (constant, reflect, edge, wrap): a masked view.",
        dict(mode="constant"),
    ),
    "Resize": OpDef(
        ("X", "roi?", "scales?", "sizes?"),
        "view",
        "Resize-19, nearest and linear: an index map (linear blends 2^d loads). Canonical form: "
        "`scales` (per axis, float) and `roi` as attributes.",
        dict(
            antialias=0,
            axes=None,
            coordinate_transformation_mode="half_pixel",
            cubic_coeff_a=-0.75,
            exclude_outside=0,
            extrapolation_value=0.0,
            keep_aspect_ratio_policy="stretch",
            mode="nearest",
            nearest_mode="round_prefer_floor",
        ),
    ),
    "GridSample": OpDef(
        ("X", "grid"),
        "view",
        "GridSample-22, linear and nearest, any padding_mode: an index map that loads the grid.",
        dict(align_corners=0, mode="linear", padding_mode="zeros"),
    ),
    "EyeLike": OpDef(("input",), "pointwise", "EyeLike-22: ones on the k-th diagonal, by index.", dict(dtype=0, k=0)),
    "ReverseSequence": OpDef(
        ("input", "sequence_lens"),
        "view",
        "ReverseSequence-10: an index map that loads the lengths.",
        dict(batch_axis=1, time_axis=0),
    ),
    "Trilu": OpDef(("input", "k?"), "pointwise", "Trilu-14: keeps a triangle, by index.", dict(upper=1), params=(1,)),
    "DepthToSpace": OpDef(
        ("input",),
        "view",
        "DepthToSpace-13: rewritten as Reshape, Transpose, Reshape.",
        dict(blocksize=None, mode="DCR"),
    ),
    "SpaceToDepth": OpDef(
        ("input",), "view", "SpaceToDepth-13: rewritten as Reshape, Transpose, Reshape.", dict(blocksize=None)
    ),
    "Range": OpDef(
        ("start", "limit?", "delta"),
        "pointwise",
        "Range-11: start + i * delta; folds when its inputs are constants. Canonical form "
        "(kept by a dynamic compile): no `limit`, the result type gives the length.",
        params=(0, 1, 2),
    ),
}
REDUCTIONS = (
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
)
for _name in REDUCTIONS:
    OPS[_name] = OpDef(
        ("data", "axes?"),
        "reduce",
        f"{_name}-18 (axes as an input; canonical form: attribute).",
        dict(keepdims=1, noop_with_empty_axes=0),
        kernel="reduce",
    )
for _name in UNARY:
    OPS.setdefault(_name, _pw(("X",), f"{_name}: elementwise."))
for _name in BINARY:
    OPS.setdefault(_name, _pw(("A", "B"), f"{_name}: elementwise with NumPy broadcasting."))


_SNAKE_EXCEPTIONS = {"IsNaN": "is_nan", "PRelu": "prelu"}


def snake(op_type: str) -> str:
    """`BatchNormalization` -> `batch_normalization`, the tnx op name."""
    if op_type in _SNAKE_EXCEPTIONS:
        return _SNAKE_EXCEPTIONS[op_type]
    out = []
    for i, c in enumerate(op_type):
        if (
            c.isupper()
            and i
            and (
                not op_type[i - 1].isupper()
                or (i + 1 < len(op_type) and op_type[i + 1].islower() and op_type[i - 1].isupper())
            )
        ):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


INTERNAL = ("Sizes", "Empty")  # tnx ops of tritonnx's own, which no ONNX node imports as
KIND = {f"tnx.{snake(name)}": d.kind for name, d in OPS.items()}
# {tnx op name: {attribute: default}}: the spec's defaults, which the IR leaves out
# (`tritonnx.dialects.builders.create` drops them, `attrs_of` fills them back in)
DEFAULTS = {f"tnx.{snake(name)}": {k: v for k, v in d.attrs.items() if v is not None} for name, d in OPS.items()}
SPATIAL = ("tnx.conv", "tnx.conv_transpose", "tnx.max_pool", "tnx.average_pool", "tnx.lp_pool")


def defaults(op_name: str, attrs: dict) -> dict:
    """The default attributes of tnx op `op_name` given its present `attrs` (a copy): the
    op table's, plus, for Conv, ConvTranspose and the pools (whose kernel_shape the importer
    always fills in), the derived ones: strides and dilations of 1, zero pads and output
    padding, one per spatial axis."""
    out = {k: list(v) if isinstance(v, list) else v for k, v in DEFAULTS.get(op_name, {}).items()}
    if op_name in SPATIAL and "kernel_shape" in attrs:
        n = len(attrs["kernel_shape"])
        out.update(strides=[1] * n, dilations=[1] * n, pads=[0] * (2 * n))
        if op_name == "tnx.conv_transpose":
            out["output_padding"] = [0] * n
    return out


KERNEL_KIND = {f"tnx.{snake(name)}": d.kernel for name, d in OPS.items() if d.kernel is not None}
ONNX_NAME = {f"tnx.{snake(name)}": name for name in OPS}
DOT = tuple(n for n, k in KIND.items() if k == "dot")
REDUCE = tuple(n for n, k in KIND.items() if k == "reduce")
POINTWISE = tuple(n for n, k in KIND.items() if k == "pointwise")
VIEWS = tuple(n for n, k in KIND.items() if k == "view")  # index maps on loads
assert set(KERNEL_KIND) == set(DOT + REDUCE), "every anchor op names its kernel kind"


def irdl_text() -> str:
    """The IRDL definition of the tnx dialect, generated from OPS."""
    out = [
        "// The tnx dialect: one op per ONNX operator, at the graph level.",
        "// GENERATED by `python -m tritonnx.dialects.ops` from tritonnx/dialects/ops.py; do not edit.",
        "// Operands are ranked tensors; ONNX attributes are carried as MLIR attributes with the",
        "// spec's names (operand names lower-cased, as IRDL requires). Each operand has its own",
        "// constraint variable (IRDL binds a variable used twice to one type). An optional",
        "// operand is marked `optional`.",
        "irdl.dialect @tnx {",
    ]
    for name in sorted(OPS, key=snake):
        d = OPS[name]
        out.append(f"  // {d.doc}")
        out.append(f"  irdl.operation @{snake(name)} {{")
        for i, _ in enumerate(d.operands):
            out.append(f"    %{i} = irdl.any")
        out.append("    %r = irdl.any")
        if d.operands:
            ins = ", ".join(
                f"{o.rstrip('?').lower()}: {'optional ' if o.endswith('?') else ''}%{i}"
                for i, o in enumerate(d.operands)
            )
            out.append(f"    irdl.operands({ins})")
        out.append("    irdl.results(output: %r)")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


IRDL_PATH = Path(__file__).with_name("tnx.irdl.mlir")

if __name__ == "__main__":
    IRDL_PATH.write_text(irdl_text())
    print(f"wrote {IRDL_PATH}", file=sys.stderr)
