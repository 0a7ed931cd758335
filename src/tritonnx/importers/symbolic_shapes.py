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

import numpy as np
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
    from onnxruntime.tools.symbolic_shape_infer import (
        SymbolicShapeInference,
        get_attribute,
        get_opset,
        get_shape_from_sympy_shape,
    )

    class Inference(SymbolicShapeInference):
        """onnxruntime's inference, with the output sizes of ConvTranspose-11, Flatten-21 and GatherND-13,
        Resize's and the common Slices' without the tool's `sympy.simplify` (seconds per
        node over the nested ceil(ceil(H/2)/2) sizes of a feature pyramid), and Concat's
        shape data along a negative axis."""

        def __init__(self):
            super().__init__(int_max=2**31 - 1, auto_merge=True, guess_output_rank=False, verbose=0)
            self.dispatcher_["ConvTranspose"] = self._infer_conv_transpose
            self.dispatcher_["Flatten"] = self._infer_flatten
            self.dispatcher_["GatherND"] = self._infer_gather_nd
            self.dispatcher_["Resize"] = self._infer_resize
            self._tool_slice = self.dispatcher_["Slice"]
            self.dispatcher_["Slice"] = self._infer_slice
            self._tool_concat = self.dispatcher_["Concat"]
            self.dispatcher_["Concat"] = self._infer_concat
            for op, fn in list(self.dispatcher_.items()):
                self.dispatcher_[op] = self._lenient(fn)

        def _preprocess(self, in_mp):
            """The tool's `_preprocess`, with the initializers' value infos built directly
            (the tool's `make_tensor_value_info` per initializer took a tenth of its time)."""
            self.out_mp_ = onnx.ModelProto()
            self.out_mp_.CopyFrom(in_mp)
            self.graph_inputs_ = {i.name: i for i in self.out_mp_.graph.input}
            self.initializers_ = {i.name: i for i in self.out_mp_.graph.initializer}
            self.known_vi_ = dict(self.graph_inputs_)
            for t in self.out_mp_.graph.initializer:
                vi = onnx.ValueInfoProto(name=t.name)
                tensor = vi.type.tensor_type
                tensor.elem_type = t.data_type
                shape = tensor.shape
                shape.SetInParent()  # a scalar has a shape of no dimensions
                for d in t.dims:
                    shape.dim.add().dim_value = d
                self.known_vi_[t.name] = vi

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

        def _infer_gather_nd(self, node):
            """GatherND-13 with its batch_dims (the tool's rule leaves them out): indices'
            leading axes, then data's axes after the batch dims and the index tuple."""
            data, indices = self._get_sympy_shape(node, 0), self._get_sympy_shape(node, 1)
            batch_dims = get_attribute(node, "batch_dims", 0)
            self._set_shape(node, indices[:-1] + data[batch_dims + int(indices[-1]) :])

        def _infer_flatten(self, node):
            x = self._get_sympy_shape(node, 0)
            axis = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 1)
            axis = axis + len(x) if axis < 0 else axis
            self._set_shape(node, [sympy.Mul(*x[:axis]), sympy.Mul(*x[axis:])])

        def _infer_resize(self, node):
            """Resize-10/11/13/18/19 (https://onnx.ai/onnx/operators/onnx__Resize.html): the
            `sizes` input where given, else floor(size * (roi end - roi start) * scale), the
            scales as exact rationals (a float32 scale of 2 makes 2*H, not floor(2.0*H))."""
            x = self._get_sympy_shape(node, 0)
            opset = get_opset(self.out_mp_)
            scales = self._try_get_value(node, 1 if opset <= 10 else 2)
            sizes = None if opset <= 10 else self._try_get_value(node, 3)
            roi = None if opset <= 10 else self._try_get_value(node, 1)
            if sizes is not None and len(sizes):
                self._set_shape(node, [sympy.floor(v) for v in sizes])
            elif scales is not None and len(scales):
                mode = next((a.s for a in node.attribute if a.name == "coordinate_transformation_mode"), b"")
                crop = mode == b"tf_crop_and_resize" and roi is not None and len(roi) == 2 * len(x)
                extent = [
                    sympy.Rational(float(roi[len(x) + i])) - sympy.Rational(float(roi[i])) if crop else 1
                    for i in range(len(x))
                ]
                self._set_shape(
                    node, [sympy.floor(d * e * sympy.Rational(float(s))) for d, e, s in zip(x, extent, scales)]
                )
            else:
                self._set_shape(node, self._new_symbolic_shape(self._get_shape_rank(node, 0), node))

        def _infer_concat(self, node):
            """The tool's Concat with a negative axis made positive first: its rule follows
            shape data only along axis 0, and Paddle2ONNX writes `axis = -1` for the 1-D
            Reshape targets it concatenates (PP-OCR's direction classifier)."""
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            if axis < 0:
                rank = len(self._get_shape(node, 0) or [])
                if rank:
                    fixed = onnx.NodeProto()
                    fixed.CopyFrom(node)
                    for a in fixed.attribute:
                        if a.name == "axis":
                            a.i = axis + rank
                    return self._tool_concat(fixed)
            return self._tool_concat(node)

        def _infer_slice(self, node):
            """Slice-10/11/13 (https://onnx.ai/onnx/operators/onnx__Slice.html) where starts,
            ends and steps are known, steps positive and starts non-negative numbers: per
            axis, the end clamped to the size (Min(end, size) where either is symbolic; an end
            of INT_MAX or more is the size, a negative one counts from it) and the size
            ceil((end - start) / step). The tool's rule, with its simplifications, does the
            rest (and the data of shape slices in both cases)."""
            starts, ends = self._try_get_value(node, 1), self._try_get_value(node, 2)
            axes = self._try_get_value(node, 3) if len(node.input) > 3 and node.input[3] else None
            steps = self._try_get_value(node, 4) if len(node.input) > 4 and node.input[4] else None
            if get_opset(self.out_mp_) < 10 or starts is None or ends is None:
                return self._tool_slice(node)
            starts, ends = list(np.atleast_1d(starts)), list(np.atleast_1d(ends))
            shape = self._get_sympy_shape(node, 0)
            axes = list(range(len(starts))) if axes is None else [int(a) % len(shape) for a in np.atleast_1d(axes)]
            steps = [1] * len(starts) if steps is None else list(np.atleast_1d(steps))
            new = list(shape)
            for axis, start, end, step in zip(axes, starts, ends, steps):
                d = shape[axis]
                if not (_number(start) and _number(step) and int(step) > 0 and int(start) >= 0):
                    return self._tool_slice(node)
                start, step = int(start), int(step)
                if _number(end):
                    end = int(end)
                    if end >= self.int_max_:
                        end = d
                    elif end < 0:
                        end = d + end if not _number(d) else max(0, end + int(d))
                    elif _number(d):
                        end = min(end, int(d))
                    elif end > 1:
                        end = sympy.Min(end, d)
                elif _number(d):
                    # Min(seq, 512) cannot simplify (seq is a positive integer, 512 > 1): built
                    # without sympy's evaluation, which takes milliseconds to find that out
                    fast = isinstance(end, sympy.Symbol) and int(d) > 1
                    end = sympy.Min(end, int(d), evaluate=not fast)
                elif end != d:
                    return self._tool_slice(node)
                if _number(d):
                    start = min(start, int(d))
                new[axis] = (
                    end - start if step == 1 else sympy.floor(sympy.Rational(1, step) * (end - start + step - 1))
                )
                if _number(new[axis]):
                    new[axis] = max(0, int(new[axis]))
            self._update_computed_dims(new)
            vi = self.known_vi_[node.output[0]]
            vi.CopyFrom(
                onnx.helper.make_tensor_value_info(
                    node.output[0], vi.type.tensor_type.elem_type, get_shape_from_sympy_shape(new)
                )
            )
            data = self.sympy_data_.get(node.input[0])
            if isinstance(data, list) and axes == [0] and len(starts) == 1 and _number(ends[0]):  # shape data
                self.sympy_data_[node.output[0]] = data[int(starts[0]) : int(ends[0]) : int(steps[0])]

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


def _number(x) -> bool:
    """True for a plain or numpy integer, or a sympy Integer (no symbol)."""
    return isinstance(x, (int, np.integer)) or (isinstance(x, sympy.Basic) and x.is_Integer)


def infer(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """(`proto` with every value's shape inferred symbolically (dim_params holding sympy
    expressions over the input symbols), the merges the inference made as
    [(expression, the expression or number it was merged into)]). Runs the tool's steps
    itself: its `infer_shapes` writes a file into the working directory when some shape
    stays unknown, which a compiler must not do. Raises what the tool raises for an
    inconsistent model.

    A merge is an assumption: where two sizes meet in one broadcast or MatMul (a position
    table's `Min(512, seq)` added to a `seq`-long sequence), the tool takes them to be
    equal from there on. The model is valid only at sizes where they are; the caller must
    check that at run time (`assumptions`)."""
    logging.getLogger("onnxruntime.tools.symbolic_shape_infer").setLevel(logging.ERROR)
    inference = _inference_class()()
    inference._preprocess(proto)
    while inference.run_:
        inference._infer_impl()
    inference._update_output_from_vi()
    merges = [(str(k), str(v)) for k, v in inference.suggested_merge_.items() if str(k) != str(v)]
    return inference.out_mp_, merges


def assumptions(merges: list[tuple[str, str]], symbols: set[str]) -> list[tuple[str, str]]:
    """The run-time conditions [(Python condition over the symbols, reason)] that the
    inference's `merges` rely on: `min(512, seq) == seq`, that is seq <= 512. A merge of a
    size the tool made up itself (a symbol that is not a model symbol) is not checkable and
    is left out: a size over such a symbol is refused by the importer where a node uses it."""
    from tritonnx import symbolic

    out = []
    for a, b in merges:
        try:
            ea, eb = symbolic.parse(a), symbolic.parse(b)
        except ValueError:
            continue
        if not {s.name for s in ea.free_symbols | eb.free_symbols} <= symbols:
            continue
        out.append(
            (
                f"{symbolic.to_python(ea)} == {symbolic.to_python(eb)}",
                f"the model's shapes agree only where {a} equals {b} (two sizes meet in one operation), "
                "so the model is not valid at these sizes",
            )
        )
    return out
