"""Symbolic shape inference: every value's shape as expressions over the model's symbols.

The model's symbols are the dynamic dimensions of its graph inputs: an ONNX `dim_param`
(sanitized to a Python identifier: it becomes a kernel argument), or, for a `-1`, an
unnamed or an unusable one (`?`), the input's name and axis (`x_2`). `name_symbols`
writes them into the inputs.

The expressions come from onnxruntime's symbolic shape inference
(`onnxruntime.tools.symbolic_shape_infer`, sympy underneath), which propagates sizes
through shape computations (Shape, Gather, Concat, Reshape targets) and through strided
Conv and pooling (floor division). tritonnx adds ConvTranspose and Flatten, which that
tool leaves to onnx's inference. A size the tool cannot express gets a fresh symbol of its own
(`Resize_12_o0__d2`, `unk__3`); `tritonnx.importers.onnx` refuses such a size when a
node uses it, naming the node.
"""

from __future__ import annotations

import keyword
import logging
import re

import onnx
import sympy

RESERVED = {"tl", "triton", "float", "range", "int", "min", "max"}  # names a kernel's source uses
PRINTED = re.compile(r"(v|k|acc|out|in\d+_)\d*")  # lower-to-triton's value names


def symbol_name(dim_param: str, input_name: str, axis: int) -> str:
    """The identifier of a graph input's dynamic dimension: its dim_param sanitized, or
    `<input>_<axis>` when it has none (or only punctuation, as Paddle's `?`)."""
    name = re.sub(r"\W", "_", dim_param).strip("_")
    if not name:
        name = re.sub(r"\W", "_", f"{input_name}_{axis}")
    if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED or PRINTED.fullmatch(name):
        name = f"s_{name}"
    return name


def name_symbols(proto: onnx.ModelProto) -> dict[str, list[tuple[str, int]]]:
    """Names the dynamic dimensions of `proto`'s graph inputs in place (dim_param set to
    the symbol's identifier; `-1` and unnamed dimensions included; a `-1` of an output or
    value_info becomes unknown, for inference to fill) and returns {symbol:
    [(input name, axis), ...]}. Inputs that are initializers (weights) are left alone."""
    inits = {t.name for t in proto.graph.initializer}
    out: dict[str, list[tuple[str, int]]] = {}
    for inp in proto.graph.input:
        if inp.name in inits or not inp.type.tensor_type.HasField("shape"):
            continue
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value >= 0:
                continue
            name = symbol_name(d.dim_param if d.HasField("dim_param") else "", inp.name, i)
            d.Clear()
            d.dim_param = name
            out.setdefault(name, []).append((inp.name, i))
    for vi in [*proto.graph.output, *proto.graph.value_info]:  # a -1 elsewhere: unknown, to be inferred
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value < 0:
                d.Clear()
    return out


def _inference_class():
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference, get_shape_from_sympy_shape

    class Inference(SymbolicShapeInference):
        """onnxruntime's inference, with the output sizes of ConvTranspose-11 and Flatten-21."""

        def __init__(self):
            super().__init__(int_max=2**31 - 1, auto_merge=True, guess_output_rank=False, verbose=0)
            self.dispatcher_["ConvTranspose"] = self._infer_conv_transpose
            self.dispatcher_["Flatten"] = self._infer_flatten
            for op, fn in list(self.dispatcher_.items()):
                self.dispatcher_[op] = self._lenient(fn)

        @staticmethod
        def _lenient(fn):
            """The tool's rule for an op, which keeps onnx's inference for the node (the tool
            runs it first) where the rule's own assertion fails (Concat of shape data along
            an axis other than 0, as Paddle2ONNX exports have)."""

            def rule(node):
                try:
                    fn(node)
                except AssertionError:
                    pass

            return rule

        def _set_shape(self, node, shape):
            self._update_computed_dims(shape)
            vi = self.known_vi_[node.output[0]]
            vi.CopyFrom(
                onnx.helper.make_tensor_value_info(
                    node.output[0],
                    self.known_vi_[node.input[0]].type.tensor_type.elem_type,
                    get_shape_from_sympy_shape(shape),
                )
            )

        def _infer_flatten(self, node):
            x = self._get_sympy_shape(node, 0)
            axis = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
            axis = axis + len(x) if axis < 0 else axis
            self._set_shape(node, [sympy.Mul(*x[:axis]), sympy.Mul(*x[axis:])])

        def _infer_conv_transpose(self, node):
            x = self._get_sympy_shape(node, 0)
            w = self._get_sympy_shape(node, 1)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            n = len(x) - 2
            group = attrs.get("group", 1)
            kernel = list(attrs.get("kernel_shape") or w[2:])
            strides = list(attrs.get("strides") or [1] * n)
            dil = list(attrs.get("dilations") or [1] * n)
            out_pad = list(attrs.get("output_padding") or [0] * n)
            pads = list(attrs.get("pads") or [0] * (2 * n))
            auto_pad = attrs.get("auto_pad", b"NOTSET")
            auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
            if attrs.get("output_shape"):
                spatial = [sympy.Integer(int(v)) for v in attrs["output_shape"][-n:]]
            elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                spatial = [x[2 + i] * strides[i] for i in range(n)]
            else:
                spatial = [
                    strides[i] * (x[2 + i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[n + i]
                    for i in range(n)
                ]
            self._set_shape(node, [x[0], w[1] * group, *spatial])

    return Inference


def infer(proto: onnx.ModelProto) -> onnx.ModelProto:
    """`proto` with every value's shape inferred symbolically (dim_params holding sympy
    expressions over the input symbols). Runs the tool's steps itself: its `infer_shapes`
    writes a file into the working directory when some shape stays unknown, which a
    compiler must not do. Raises what the tool raises for an inconsistent model."""
    logging.getLogger("onnxruntime.tools.symbolic_shape_infer").setLevel(logging.ERROR)
    inference = _inference_class()()
    inference._preprocess(proto)
    while inference.run_:
        inference._infer_impl()
    inference._update_output_from_vi()
    return inference.out_mp_
