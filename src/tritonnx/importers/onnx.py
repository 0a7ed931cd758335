"""ONNX -> tnx dialect.

The importer is generic: one tnx op per ONNX node, located at the node (`loc("n51")`; an
unnamed node is named `<OpType>_<index>`), the spec's attributes carried through; those
equal to their default (`tritonnx.dialects.ops`, per the operator pages,
https://onnx.ai/onnx/operators/) are left out of the IR and `attrs_of` reads them back.
Initializers become `dense_resource` constants located at their names. Meaning lives
in the passes. One normalization happens here because the dialect's ops have fixed arity:
N-ary Concat, Sum, Max, Min and Mean become chains of binary ops (Mean then divides).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
from mlir import ir
from mlir.dialects import func
from onnx import numpy_helper, shape_inference, version_converter

from tritonnx.dialects.builders import WeightStore, create, np_dtype, shape_of, tensor_type, type_shape
from tritonnx.dialects.ops import INTERNAL, OPS, snake
from tritonnx.dialects.verify import INLINED, inlined_name, label, node_names, user_node
from tritonnx.errors import InvalidModelError, ModelLoadError, UnsupportedModelError
from tritonnx.importers import control_flow, external, recurrent_steps, symbolic_shapes
from tritonnx.importers.recurrent import GATES, import_recurrent
from tritonnx.passes.choose_blocks import MAX_RECURRENT_HIDDEN
from tritonnx.symbolic import HINT, broadcast_shapes, is_symbolic, make, parse, sym

NOTES = "tritonnx.notes"  # metadata of a prepared model: the importer's notes for the report (a JSON list)
OPSET = 21  # older models are converted up to this opset; newer ones are imported as they are
MIN_OPSET, MAX_OPSET = 1, onnx.defs.onnx_opset_version()
_AXIS_ATTRS = {"Flatten", "Concat", "Softmax", "LogSoftmax", "Hardmax", "Gather", "GatherElements"}


def load(model: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Reads and checks a model. Raises ModelLoadError with the file name on failure.

    A model file with external data (any over 2 GB) is read without it and checked by path
    (onnx's checker then reads the file itself, at any size, and checks that each location is
    a file inside the model's directory); its big initializers stay in their files,
    memory-mapped when read (`tritonnx.importers.external`)."""
    where = "the model"
    try:
        if isinstance(model, onnx.ModelProto):
            proto = model
        elif isinstance(model, bytes):
            proto = onnx.load_from_string(model)
        else:
            where = str(model)
            if Path(model).is_dir():
                raise ModelLoadError(f"{where} is a directory; give the path of an .onnx file.")
            if not Path(model).is_file():
                raise ModelLoadError(f"{where}: no such file.")
            proto = onnx.load(str(model), load_external_data=False)
            if external.has_external(proto):
                onnx.checker.check_model(str(model))
                external.locate(proto, Path(model).parent)
                return proto
        onnx.checker.check_model(_checkable(proto))
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError, checker's ValidationError, OSError: a ModelLoadError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(
            f"{where} is not a valid ONNX model ({type(e).__name__}: {first}). "
            "Check that the file is complete and was saved by onnx.save."
        ) from None
    return proto


def parameter_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that feed operands tritonnx needs at compile time (a Reshape's shape, a
    Slice's starts, a Resize's scales, ...): to run such a model, pass their values to
    `tritonnx.compile(..., constants=...)`."""
    inputs = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    found: set[str] = set()
    for node in model.graph.node:
        d = OPS.get(node.op_type)
        params = d.parameters if d is not None else CONVERTED_PARAMETERS.get(node.op_type, ())
        if node.domain in ("", "ai.onnx"):
            found.update(node.input[i] for i in params if i < len(node.input) and node.input[i] in inputs)
    return found


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    domains = ", ".join(sorted(e.domain for e in model.opset_import)) or "none"
    raise UnsupportedModelError(
        f"the model imports no default-domain (ai.onnx) opset (only: {domains}); tritonnx compiles ai.onnx models."
    )


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


SOURCE_OPSET = "tritonnx.source_opset"  # model metadata: the opset the user's model imports
ASSUMPTIONS = "tritonnx.assumptions"  # model metadata: JSON [[condition, reason]] the shapes rely on


def expand_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inlines model-local functions and every op tritonnx does not implement itself but
    ONNX defines as a function of other ops (NegativeLogLikelihoodLoss, Swish, Attention,
    RMSNormalization, ...), with onnx's own inliner.

    onnx's inliner leaves the nodes it generates unnamed; each is named here after the node
    it came from (`drop1 (Bernoulli): RandomUniformLike_0`, see
    `tritonnx.dialects.verify.inlined_name`), so that errors and dumps name the user's node.
    The result records the model's own opset in its metadata (SOURCE_OPSET). Attention-23
    to -25 is expanded first by `tritonnx.importers.attention`, into the ops the
    flash-attention kernel fuses (onnx's inliner fails on its optional inputs and outputs)."""
    from onnx import inliner

    from tritonnx.importers import attention

    model = attention.expand(model)  # Attention-23 to -25 as the ops the flash-attention kernel fuses
    try:
        out = inliner.inline_selected_functions(
            model, [("", op) for op in OPS if op not in INTERNAL], exclude=True, inline_schema_functions=True
        )
    except Exception:  # noqa: BLE001 - an op the inliner cannot expand: check_supported will name it
        return model
    _name_inlined(list(model.graph.node), out.graph.node)
    if not any(p.key == SOURCE_OPSET for p in out.metadata_props):
        try:
            out.metadata_props.add(key=SOURCE_OPSET, value=str(_opset(model)))
        except UnsupportedModelError:  # no ai.onnx opset: check_supported says so
            pass
    return out


def _name_inlined(original: list[onnx.NodeProto], expanded) -> None:
    """Names the nodes of `expanded` that onnx's inliner generated after the node of
    `original` each replaces. The inliner keeps the other nodes as they are and in order, and
    puts each call's expansion where the call was; a call's expansion ends once it has
    produced the call's outputs (the next expansion then begins)."""

    def key(n):
        return n.domain, n.op_type, tuple(n.input), tuple(n.output)

    kept = {key(n) for n in expanded}
    calls = [i for i, n in enumerate(original) if key(n) not in kept]
    if not calls:
        return
    position = {key(n): i for i, n in enumerate(original)}
    at: int = 0
    pending: int | None = None
    produced: set[str] = set()
    counts: dict[int, int] = {}
    for node in expanded:
        if key(node) in position:  # a node of the user's (a call is never kept)
            at = position[key(node)] + 1
            pending = None
            continue
        if pending is not None:
            outs = {o for o in original[pending].output if o}
            if outs and outs <= produced:  # that call is complete: this node starts the next
                at, pending = pending + 1, None
        if pending is None:
            pending = next((c for c in calls if c >= at), calls[-1])
            produced = set()
        produced.update(node.output)
        call = original[pending]
        j = counts[pending] = counts.get(pending, -1) + 1
        node.name = inlined_name(_node_name(call, pending), call.op_type, node.name or f"{node.op_type}_{j}")


def _source_opset(model: onnx.ModelProto) -> int:
    for p in model.metadata_props:
        if p.key == SOURCE_OPSET and p.value.isdigit():
            return int(p.value)
    return _opset(model)


_INFERENCE_ERROR = re.compile(
    r"\(op_type:([\w.]+), node name: ([^\n]*?)\): \[(?:ShapeInference|TypeInference)Error\] (.*)"
)


def invalid_model_error(e: Exception, model: onnx.ModelProto) -> InvalidModelError | None:
    """onnx shape inference's error for an inconsistent node, as an InvalidModelError naming
    the user's node; None for any other error."""
    m = _INFERENCE_ERROR.search(str(e))
    if not m:
        return None
    op, name, why = m.group(1), m.group(2) or "(unnamed)", m.group(3).strip().rstrip(".")
    if INLINED.fullmatch(name) or why.startswith("Inference error"):
        return None  # a node onnx's inliner wrote, or inside an op's function body: not the user's
    return InvalidModelError(f"{label(name, op, _source_opset(model))}: {why} (onnx shape inference).")


FOLD_LIMIT = 1 << 16  # elements: shape arithmetic is small; big constants fold later, in tnx-canonicalize


def _static(vi: onnx.ValueInfoProto) -> list[int] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
        return None
    return [d.dim_value for d in tt.shape.dim]


DATA_PROP_LIMIT = 1 << 12  # elements: a 1-D tensor longer than this is data, never a shape


def _long_vector(model: onnx.ModelProto) -> bool:
    """Whether some 1-D tensor of `model` (input, initializer or inferred value) has more than
    DATA_PROP_LIMIT elements."""
    graph = model.graph
    infos = list(graph.value_info) + list(graph.input) + list(graph.output)
    if any(len(t.dims) == 1 and t.dims[0] > DATA_PROP_LIMIT for t in graph.initializer):
        return True
    return any((s := _static(vi)) is not None and len(s) == 1 and s[0] > DATA_PROP_LIMIT for vi in infos)


def _all_static(model: onnx.ModelProto) -> bool:
    """Whether every value a node of `model` produces has a static shape."""
    graph = model.graph
    shapes = {vi.name: _static(vi) for vi in list(graph.value_info) + list(graph.input) + list(graph.output)}
    return all(shapes.get(o) is not None for n in graph.node for o in n.output if o)


def infer_shapes(model: onnx.ModelProto, data_prop: bool = True) -> onnx.ModelProto:
    """onnx shape inference (type-checked, strict), with data propagation where it can help.

    Plain inference runs first; its result is returned when every value's shape is static
    (data propagation has nothing to add), when `data_prop` is False, or when some 1-D
    tensor is longer than DATA_PROP_LIMIT: onnx's data propagation holds the values of
    every 1-D tensor that reaches Cast, Slice, Concat, Gather, Unsqueeze, ... as a
    TensorShapeProto, some 80 bytes an element (onnx 1.23: 5.5 GB for a 64M-element
    input). Shapes that then stay unknown are left to `resolve_shapes`, which folds shape
    subgraphs itself. Raises onnx's errors (InferenceError) for an inconsistent model."""
    plain = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=False)
    if not data_prop or _all_static(plain) or _long_vector(plain):
        return plain
    return shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)


def resolve_shapes(model: onnx.ModelProto, rounds: int = 8) -> onnx.ModelProto:
    """Evaluates small constant subgraphs (Shape, Range, Concat of constants, ...) with
    onnx.reference and re-runs shape inference, until every tensor has a static shape or
    nothing more folds. Models whose shapes are static already are returned as they are."""
    from tritonnx.importers.reference import evaluator as reference_evaluator

    for _ in range(rounds):
        if _all_static(model):
            return model
        graph = model.graph
        shapes = {vi.name: _static(vi) for vi in list(graph.value_info) + list(graph.input) + list(graph.output)}
        known = {t.name: external.array(t) for t in graph.initializer}  # external: mapped, not read
        opset = _opset(model)
        kept, folded = [], {}
        elem = {vi.name: vi.type.tensor_type.elem_type for vi in list(graph.value_info) + list(graph.input)}
        for node in graph.node:
            value: list[Any] | None = None
            if (
                node.domain in ("", "ai.onnx")
                and node.op_type == "CastLike"
                and node.input[0] in known
                and elem.get(node.input[1])
            ):  # the second input only names the type
                value = [known[node.input[0]].astype(onnx.helper.tensor_dtype_to_np_dtype(elem[node.input[1]]))]
            elif node.domain in ("", "ai.onnx") and node.op_type == "Shape" and shapes.get(node.input[0]) is not None:
                full = np.array(shapes[node.input[0]], np.int64)
                attrs = {a.name: a.i for a in node.attribute}
                value = [full[attrs.get("start", 0) : attrs.get("end", len(full))]]
            elif (
                node.domain in ("", "ai.onnx")
                and not node.op_type.startswith("Random")
                and node.op_type not in ("Bernoulli", "Multinomial")
                and all(not i or i in known for i in node.input)
                and sum(known[i].size for i in node.input if i) <= FOLD_LIMIT
                and (node.op_type != "ConstantOfShape" or math.prod(known[node.input[0]].tolist()) <= FOLD_LIMIT)
            ):
                try:
                    sub = onnx.helper.make_graph(
                        [node],
                        "fold",
                        [
                            onnx.helper.make_tensor_value_info(
                                i, onnx.helper.np_dtype_to_tensor_dtype(known[i].dtype), known[i].shape
                            )
                            for i in dict.fromkeys(node.input)
                            if i
                        ],
                        [onnx.helper.make_empty_tensor_value_info(o) for o in node.output if o],
                    )
                    evaluator = reference_evaluator(
                        onnx.helper.make_model(sub, opset_imports=[onnx.helper.make_opsetid("", opset)])
                    )
                    # run(None, feeds) returns the list of all outputs (a dict only with intermediate=True)
                    value = cast(list[Any], evaluator.run(None, {i: known[i] for i in node.input if i}))
                except Exception:  # noqa: BLE001 - a node the reference evaluator cannot run is not folded
                    value = None
                if value is not None and any(
                    not isinstance(v, np.ndarray | np.generic) or v.size > FOLD_LIMIT for v in value
                ):  # a sequence or an optional is a host-side value, never an initializer
                    value = None
            if value is None:
                kept.append(node)
                continue
            for name, v in zip([o for o in node.output if o], value):
                known[name] = folded[name] = np.asarray(v)
        if not folded:
            return model
        del graph.node[:]
        graph.node.extend(kept)
        # read by a kept node, in a subgraph too (an If branch reads outer values by name)
        used = {i for _, n in _nodes_at_any_depth(graph) for i in n.input} | {o.name for o in graph.output}
        graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in folded.items() if k in used)
        stale = [vi for vi in graph.value_info if vi.name in folded]  # its inferred shape may be partial
        for vi in stale:
            graph.value_info.remove(vi)
        model = infer_shapes(model)
    return model


_CONSTANT_VALUES = {  # Constant-13's attributes of a dense value, and their dtypes
    "value": None,
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


def _constants_as_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    """`proto` (changed in place) with its Constant nodes of a dense value as initializers
    of the same name (https://onnx.ai/onnx/operators/onnx__Constant.html): a third of an
    exported transformer's nodes, which the importer and the folding would otherwise each
    handle as an op; and its Identity nodes of an initializer (a tied weight's alias) read
    through to the initializer. A graph output stays a node; a model with subgraphs (If,
    Loop bodies, which may read those values by name) is left as it is."""
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in proto.graph.node for a in n.attribute
    ):
        return proto  # a subgraph may read a Constant or an alias by name
    outputs = {o.name for o in proto.graph.output}
    inits = {t.name for t in proto.graph.initializer}
    kept, made, alias = [], [], {}
    for node in proto.graph.node:
        if (
            node.op_type == "Identity"
            and node.domain in ("", "ai.onnx")
            and node.input[0] in inits
            and node.output[0] not in outputs
        ):  # an alias of a weight (exporters write one per tied parameter)
            alias[node.output[0]] = node.input[0]
            continue
        attr = node.attribute[0] if node.op_type == "Constant" and len(node.attribute) == 1 else None
        if (
            attr is None
            or node.domain not in ("", "ai.onnx")
            or attr.name not in _CONSTANT_VALUES
            or node.output[0] in outputs
        ):
            kept.append(node)
            continue
        value = onnx.helper.get_attribute_value(attr)
        if attr.name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(value)
        else:
            t = numpy_helper.from_array(np.asarray(value, dtype=_CONSTANT_VALUES[attr.name]))
        t.name = node.output[0]
        made.append(t)
        inits.add(t.name)
    if made or alias:
        for node in kept:
            for i, name in enumerate(node.input):
                if name in alias:
                    node.input[i] = alias[name]
        del proto.graph.node[:]
        proto.graph.node.extend(kept)
        proto.graph.initializer.extend(made)
    return proto


# op types removed from the spec that onnx's version converter replaces on the way to OPSET:
# {op type: (the last opset that has it, its replacement)}
CONVERTED = {
    "Scatter": (10, "ScatterElements"),
    "Upsample": (9, "Resize"),  # Upsample-7/9: Resize with scales (`_upsample_as_resize`)
}
CONVERTED_PARAMETERS = {"Upsample": (1,)}  # their operands needed at compile time (Upsample-9's scales)


def _nodes_at_any_depth(graph: onnx.GraphProto, prefix: str = ""):
    """(path, node) of every node of `graph` and of the subgraphs in its nodes' attributes
    (If's branches, Loop's and Scan's bodies), depth first in graph order. A path is the
    node's name (`node_names` in its own graph) under its parent's path and the attribute:
    `If_3/then_branch/NonMaxSuppression_0`; a GRAPHS attribute's k-th graph adds `[k]`."""
    for name, node in zip(node_names(graph), graph.node):
        path = prefix + name
        yield path, node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes_at_any_depth(attr.g, f"{path}/{attr.name}/")
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for k, g in enumerate(attr.graphs):
                    yield from _nodes_at_any_depth(g, f"{path}/{attr.name}[{k}]/")


def _upsample_nodes(proto: onnx.ModelProto) -> set[str]:
    """The outputs of `proto`'s Upsample nodes, at any depth (onnx's version converter keeps
    a node's outputs, not its name)."""
    return {
        node.output[0]
        for _, node in _nodes_at_any_depth(proto.graph)
        if node.op_type == "Upsample" and node.domain in ("", "ai.onnx")
    }


def _upsample_as_resize(proto: onnx.ModelProto, outputs: set[str]) -> None:
    """Gives the Resize nodes onnx's version converter made of Upsample-7/9 nodes (`outputs`)
    Upsample's coordinates, in place. Upsample maps output x to input x / scale (Resize's
    `asymmetric`) and, its scales being at least 1, nearest takes the floor
    (https://onnx.ai/onnx/operators/onnx__Upsample.html; onnxruntime's Upsample); the
    converter leaves Resize-11's defaults, half_pixel and round_prefer_floor, which move
    every sample of a linear Upsample."""
    if not outputs:
        return
    for _, node in _nodes_at_any_depth(proto.graph):
        if node.op_type == "Resize" and node.output[0] in outputs:
            kept = [a for a in node.attribute if a.name not in ("coordinate_transformation_mode", "nearest_mode")]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.extend(
                [
                    onnx.helper.make_attribute("coordinate_transformation_mode", "asymmetric"),
                    onnx.helper.make_attribute("nearest_mode", "floor"),
                ]
            )


def check_supported(model: onnx.ModelProto) -> None:
    """Raises UnsupportedModelError listing every node tritonnx cannot compile, at any
    depth: a node inside an If branch or a Loop or Scan body by its path
    (`If_3/then_branch/NonMaxSuppression_0`, see `_nodes_at_any_depth`)."""
    opset = _opset(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedModelError(
            f"the model uses opset {opset}; tritonnx supports opsets {MIN_OPSET} to {MAX_OPSET}."
        )
    bad, listed = [], []
    for name, node in _nodes_at_any_depth(model.graph):
        if node.domain in ("", "ai.onnx") and node.op_type in control_flow.CONTROL_FLOW + control_flow.HOST_VALUES:
            continue  # decided at compile time, or program steps (`compiler.program`), or refused after
        if node.domain in ("", "ai.onnx") and opset <= CONVERTED.get(node.op_type, (0, ""))[0]:
            continue  # the converter rewrites it (Scatter-9 to ScatterElements)
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPS or node.op_type in INTERNAL:
            op_type = f"{node.domain + '.' if node.domain else ''}{node.op_type}"
            user, user_op = user_node(name, op_type)
            if (user, user_op, opset) not in bad:
                bad.append((user, user_op, opset))
                listed.append(label(name, op_type, opset).removeprefix("node "))
    if bad:
        types = sorted({t for _, t, _ in bad})
        raise UnsupportedModelError(
            f"the model has {len(bad)} node(s) with op types tritonnx does not support yet "
            f"({', '.join(types)}): {'; '.join(listed)}.",
            bad,
        )


def _attr_value(attr: onnx.AttributeProto):
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return value


def _checkable(proto: onnx.ModelProto) -> onnx.ModelProto:
    """`proto`, or, when some graph output has no shape (onnx's checker requires one,
    onnxruntime does not), a copy with the output shapes onnx's shape inference gives; an
    output it gives none (an op whose inference onnx does not define at this opset, as
    GroupNormalization-21's) is left out of the copy the checker reads, the rest is checked."""

    def shaped(o: onnx.ValueInfoProto) -> bool:
        return not o.type.HasField("tensor_type") or o.type.tensor_type.HasField("shape")

    if all(shaped(o) for o in proto.graph.output):
        return proto
    light, _ = _set_weights_aside(proto)
    inferred = shape_inference.infer_shapes(light)
    if not all(shaped(o) for o in inferred.graph.output):
        kept = [o for o in inferred.graph.output if shaped(o)]
        del inferred.graph.output[:]
        inferred.graph.output.extend(kept)
    return inferred


def _spatial_defaults(op: str, attrs: dict, x_shape: list[int], w_shape: list[int] | None) -> dict:
    """Fills kernel_shape, strides, dilations, pads; resolves auto_pad into explicit pads."""
    if op == "Conv" and attrs.get("kernel_shape") is None:
        assert w_shape is not None, "Conv passes its weight's shape"
        attrs["kernel_shape"] = list(w_shape[2:])
    k = list(attrs["kernel_shape"])
    n = len(k)
    attrs["strides"] = list(attrs.get("strides") or [1] * n)
    if "dilations" in attrs:
        attrs["dilations"] = list(attrs.get("dilations") or [1] * n)
    dil = attrs.get("dilations") or [1] * n
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for i in range(n):
            size, s = x_shape[2 + i], attrs["strides"][i]
            out = -(-size // s)
            total = (out - 1) * s + (k[i] - 1) * dil[i] + 1 - size
            if is_symbolic(total):
                raise UnsupportedModelError(
                    f"{op} with auto_pad {auto_pad} over a dynamic size ({size}) with stride {s}: its "
                    "padding depends on the size; give the input shapes with `shapes=` (CLI: --shape)."
                )
            total = max(total, 0)
            small = total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else total - small)
            ends.append(total - begins[-1])
        attrs["pads"] = begins + ends
    elif auto_pad == "VALID" or attrs.get("pads") is None:
        attrs["pads"] = [0] * (2 * n)
    attrs["auto_pad"] = "NOTSET"
    return attrs


def _transpose_defaults(attrs: dict, x_shape: list[int], w_shape: list[int], out_shape: list[int]) -> dict:
    """ConvTranspose-11: explicit begin/end pads from auto_pad or output_shape (the output
    shape itself comes from shape inference)."""
    k = list(attrs.get("kernel_shape") or w_shape[2:])
    n = len(k)
    attrs["kernel_shape"] = k
    strides = list(attrs.get("strides") or [1] * n)
    dil = list(attrs.get("dilations") or [1] * n)
    out_pad = list(attrs.get("output_padding") or [0] * n)
    attrs.update(strides=strides, dilations=dil, output_padding=out_pad)
    if attrs.get("pads") is None or attrs.get("auto_pad", "NOTSET") != "NOTSET" or attrs.get("output_shape"):
        begins, ends = [], []
        for i in range(n):
            total = strides[i] * (x_shape[2 + i] - 1) + out_pad[i] + (k[i] - 1) * dil[i] + 1 - out_shape[2 + i]
            total = max(total, 0)
            if attrs.get("auto_pad") == "SAME_UPPER":
                begins.append(total // 2)
            else:
                begins.append(total - total // 2)
            ends.append(total - begins[-1])
        if attrs.get("pads") is None or attrs.get("auto_pad", "NOTSET") != "NOTSET" or attrs.get("output_shape"):
            attrs["pads"] = begins + ends
    attrs["auto_pad"] = "NOTSET"
    attrs.pop("output_shape", None)
    return attrs


def _value_types(model: onnx.ModelProto) -> dict[str, tuple[list[int | str] | None, int]]:
    """Each value's (shape, ONNX elem type) from the graph's value_info, inputs and outputs:
    a size is an int, a dim_param (an expression over the model's symbols) or -1 when the
    dimension has neither; the shape is None for a value of unknown rank."""
    types: dict[str, tuple[list[int | str] | None, int]] = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            dims: list[int | str] = [
                d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else -1
                for d in tt.shape.dim
            ]
            types[vi.name] = (dims, tt.elem_type)
        elif vi.name not in types:
            types[vi.name] = (None, tt.elem_type)
    return types


WEIGHT_BYTES = 4096  # initializers at least this big are set aside while onnx's passes run


def _set_weights_aside(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """A copy of `proto` whose big initializers are graph inputs of the same type and shape,
    and {name: initializer}. onnx's inliner, version converter and shape inference each
    serialize the whole model; without the weights that is milliseconds instead of seconds
    (ResNet-50: 100 MB), and none of them reads a weight's values."""
    light = onnx.ModelProto()
    light.CopyFrom(proto)
    inputs = {i.name for i in light.graph.input}
    kept, aside = [], {}
    for t in light.graph.initializer:
        size = len(t.raw_data) or t.ByteSize()
        if size >= WEIGHT_BYTES or external.is_external(t):  # external: a big weight (`external.locate`)
            aside[t.name] = t
        else:
            kept.append(t)
    if not aside:
        return proto, {}
    del light.graph.initializer[:]
    light.graph.initializer.extend(kept)
    light.graph.input.extend(
        onnx.helper.make_tensor_value_info(n, t.data_type, list(t.dims)) for n, t in aside.items() if n not in inputs
    )
    aside = {n: (t, n in inputs) for n, t in aside.items()}
    return light, aside


def _put_weights_back(proto: onnx.ModelProto, aside: dict) -> onnx.ModelProto:
    if not aside:
        return proto
    added = {n for n, (_, was_input) in aside.items() if not was_input}
    kept = [i for i in proto.graph.input if i.name not in added]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    proto.graph.initializer.extend(t for t, _ in aside.values())
    return proto


def model_symbols(proto: onnx.ModelProto) -> dict[str, list[tuple[str, int]]]:
    """{symbol: [(input name, axis), ...]} of a prepared model: the dim_params of its graph
    inputs (which `prepare` names)."""
    inits = {t.name for t in proto.graph.initializer}
    out: dict[str, list[tuple[str, int]]] = {}
    for inp in proto.graph.input:
        if inp.name not in inits:
            for i, d in enumerate(inp.type.tensor_type.shape.dim):
                if d.HasField("dim_param"):
                    out.setdefault(d.dim_param, []).append((inp.name, i))
    return out


def _keep_known(inferred: onnx.ModelProto, before: onnx.ModelProto) -> onnx.ModelProto:
    """`inferred` with the shapes onnx's inference gave (`before`) where onnxruntime's left a
    value without one (a rank it does not know, e.g. ReduceMax-18 with an `axes` input)."""
    known = {
        vi.name: vi for vi in [*before.graph.value_info, *before.graph.output] if vi.type.tensor_type.HasField("shape")
    }
    for vi in [*inferred.graph.value_info, *inferred.graph.output]:
        if not vi.type.tensor_type.HasField("shape") and vi.name in known:
            vi.type.CopyFrom(known[vi.name].type)
    names = {vi.name for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]}
    inferred.graph.value_info.extend(vi for n, vi in known.items() if n not in names)
    return inferred


def prepare(
    model: str | Path | bytes | onnx.ModelProto, checked: bool = False, control_flow_steps: bool = False
) -> onnx.ModelProto:
    """The model as the importer reads it: functions inlined, converted to opset OPSET,
    the dynamic dimensions of its inputs named (`symbolic_shapes.name_symbols`), every
    value's shape inferred: static sizes as numbers, dynamic ones as expressions over the
    input symbols (dim_params). `checked`: `model` is a ModelProto that `load` returned (it
    is not checked again). `control_flow_steps`: the caller compiles the If, Loop and Scan
    nodes left after `control_flow.specialize` as program steps (`compiler.program`);
    without it they are refused. Raises ModelLoadError for an unreadable or invalid model and
    UnsupportedModelError listing every unsupported node (name, op type, opset)."""
    original = cast(onnx.ModelProto, model) if checked else load(model)
    proto, aside = _set_weights_aside(original)
    if not all(n.name for n in proto.graph.node):  # by their place in the user's graph (node_names)
        if proto is original:
            proto = onnx.ModelProto()
            proto.CopyFrom(original)
        for node, name in zip(proto.graph.node, node_names(proto.graph)):
            node.name = name
    proto = expand_functions(proto)
    check_supported(proto)
    try:
        if _opset(proto) < OPSET:
            upsample = _upsample_nodes(proto)
            proto = version_converter.convert_version(proto, OPSET)
            _upsample_as_resize(proto, upsample)
        if proto is original:  # names are written into the inputs: never into the caller's model
            proto = onnx.ModelProto()
            proto.CopyFrom(original)
        symbols = symbolic_shapes.name_symbols(proto)
        if symbols:  # a static model's are folded by resolve_shapes, with everything constant
            proto = _constants_as_initializers(proto)
        proto = infer_shapes(proto)
        if symbols:  # sizes over the symbols: onnxruntime's inference, on the light model
            inferred, merges = symbolic_shapes.infer(proto)
            proto = _put_weights_back(_keep_known(inferred, proto), aside)
            conditions = symbolic_shapes.assumptions(merges, set(symbols))
            if conditions:  # checked by the runtime for every set of sizes (plan["guards"])
                proto.metadata_props.add(key=ASSUMPTIONS, value=json.dumps(conditions))
        else:
            proto = resolve_shapes(_put_weights_back(proto, aside))
            wide = recurrent_steps.unroll_wide(proto, MAX_RECURRENT_HIDDEN)
            if wide:  # too wide for the one-kernel recurrence: a GEMM and the gates per step
                proto.metadata_props.add(
                    key=NOTES,
                    value=json.dumps(
                        [
                            f"{name} ({op}, hidden_size {hidden}): over {MAX_RECURRENT_HIDDEN}, its state does not "
                            "stay on chip: it runs a kernel per time step (h·R^T with the gates' inputs, then the "
                            "gates and the state update), not one recurrence kernel"
                            for name, op, hidden in wide
                        ]
                    ),
                )
                proto = resolve_shapes(infer_shapes(proto))
            for _ in range(8):  # an If inlined may hold more control flow to decide
                if not control_flow.specialize(proto):
                    break
                proto = resolve_shapes(infer_shapes(proto))
    except Exception as e:  # noqa: BLE001 - onnx's converter and shape inference raise many types: a tritonnx error
        nodes = control_flow.nodes(proto)
        if nodes:  # onnx's inference through subgraphs fails on models onnxruntime runs: not "invalid"
            opset = _opset(proto)
            raise UnsupportedModelError(
                "tritonnx could not infer the shapes through the control flow of "
                + ", ".join(f"{name} ({op}, opset {opset})" for name, op in nodes)
                + f": {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}",
                [(name, op, opset) for name, op in nodes],
            ) from None
        invalid = invalid_model_error(e, proto)
        if invalid is not None:
            raise invalid from None
        raise UnsupportedModelError(
            f"the model could not be converted to opset {OPSET} and shape-inferred: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
        ) from None
    left = [] if control_flow_steps else control_flow.remaining(proto)
    if left:
        opset = _opset(proto)
        raise UnsupportedModelError(
            f"the model has {len(left)} control-flow node(s) tritonnx cannot compile yet (it has no "
            "run-time control flow; it compiles If, Loop and Scan only where they are decided at compile "
            "time): " + "; ".join(f"{name} ({op}, opset {opset}): {why}" for name, op, why in left) + ".",
            [(name, op, opset) for name, op, _ in left],
        )
    return proto


def import_model(
    model: str | Path | bytes | onnx.ModelProto,
    weights: WeightStore,
    input_overrides: tuple[str, ...] = (),
    prepared: bool = False,
) -> ir.Module:
    """Imports an ONNX model (ai.onnx opsets MIN_OPSET to MAX_OPSET, 1 to 28 with onnx 1.23;
    older than OPSET are converted up to it) as a tnx module with one `func.func @main`.

    Must run inside an `ir.Context` from `tritonnx.dialects.make_context()`.
    Graph inputs that have an initializer are weights unless named in `input_overrides`.
    `prepared`: the model already went through `prepare`. Raises as `prepare` does.
    """
    proto = cast(onnx.ModelProto, model) if prepared else prepare(model)
    return _Importer(proto, weights, set(input_overrides)).build()


class _Importer:
    def __init__(self, proto: onnx.ModelProto, weights: WeightStore, overrides: set[str]):
        self.proto, self.weights = proto, weights
        self.graph = proto.graph
        self.types = _value_types(proto)
        self.values: dict[str, ir.Value] = {}
        self.inits = {t.name: t for t in self.graph.initializer}
        self.inputs = [i for i in self.graph.input if i.name not in self.inits or i.name in overrides]
        self.used = {n for node in self.graph.node for n in node.input} | {o.name for o in self.graph.output}
        self.symbols = {sym(s) for s in model_symbols(proto)}
        self.producers = {
            o: label(_node_name(n, i), n.op_type) for i, n in enumerate(self.graph.node) for o in n.output
        }

    def size(self, d: int | str, name: str, axis: int, where: str) -> int:
        """One size of tensor `name`: an int, or a SymInt of its expression over the model's
        symbols. Raises UnsupportedModelError naming the node whose output size cannot be
        expressed (unknown, or given by a symbol no input has)."""
        made = None
        if isinstance(d, int) and d >= 0:
            return d
        if isinstance(d, str):
            try:
                e = parse(d)
                if e.free_symbols <= self.symbols:
                    made = make(e)
            except ValueError:
                pass
        if made is None:
            node = self.producers.get(name)
            what = f"{node} gives tensor '{name}'" if node else f"tensor '{name}' ({where})"
            known = ", ".join(sorted(str(s) for s in self.symbols)) or "none"
            raise UnsupportedModelError(
                f"{what} a size in dimension {axis} that tritonnx cannot express over the model's "
                f"symbols ({known}){': ' + repr(d) if isinstance(d, str) else ''} (a size that depends on "
                "data, or an op whose output size shape inference does not know); give the input "
                "shapes with `shapes={name: [...]}` (CLI: --shape NAME=D1,D2,...)."
            )
        return made

    def ttype(self, name: str, where: str) -> ir.RankedTensorType:
        dims, elem = self.types.get(name, (None, 0))
        if dims is None:
            node = self.producers.get(name)
            raise UnsupportedModelError(
                f"tensor '{name}' ({where}{', from ' + node if node else ''}) has no shape after shape "
                "inference (its rank is unknown); give the input shapes with `shapes={name: [...]}` "
                "(CLI: --shape NAME=D1,D2,...)."
            )
        shape = [self.size(d, name, i, where) for i, d in enumerate(dims)]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
        try:
            return tensor_type(shape, dtype)
        except KeyError:
            raise UnsupportedModelError(
                f"tensor '{name}' ({where}) has dtype {dtype}, which tritonnx does not support yet."
            ) from None

    def build(self) -> ir.Module:
        module = ir.Module.create()
        if self.symbols:
            from tritonnx.symbolic import active

            hints = active() or {}
            module.operation.attributes["tnx.symbols"] = ir.DictAttr.get(
                {
                    str(s): ir.IntegerAttr.get(ir.IntegerType.get_signless(64), hints.get(str(s), HINT))
                    for s in sorted(self.symbols, key=str)
                }
            )
        assumed: list = next((json.loads(p.value) for p in self.proto.metadata_props if p.key == ASSUMPTIONS), [])
        if assumed:  # the sizes the shapes were inferred for: the first of the plan's guards
            module.operation.attributes["tnx.guards"] = ir.ArrayAttr.get(
                [ir.StringAttr.get(f"{cond}: {reason}") for cond, reason in assumed]
            )
        module.operation.attributes["tnx.opset"] = ir.IntegerAttr.get(
            ir.IntegerType.get_signless(64), _opset(self.proto)
        )
        module.operation.attributes["tnx.source_opset"] = ir.IntegerAttr.get(
            ir.IntegerType.get_signless(64), _source_opset(self.proto)
        )
        with ir.InsertionPoint(module.body):
            arg_types = [self.ttype(i.name, "graph input") for i in self.inputs]
            out_types = [self.ttype(o.name, "graph output") for o in self.graph.output]
            fn = func.FuncOp("main", (arg_types, out_types))
            fn.attributes["tnx.inputs"] = ir.ArrayAttr.get([ir.StringAttr.get(i.name) for i in self.inputs])
            fn.attributes["tnx.outputs"] = ir.ArrayAttr.get([ir.StringAttr.get(o.name) for o in self.graph.output])
            block = fn.add_entry_block([ir.Location.name(i.name) for i in self.inputs])
        for inp, arg in zip(self.inputs, block.arguments):
            self.values[inp.name] = arg
        with ir.InsertionPoint(block):
            for name, init in self.inits.items():
                if name not in self.values:
                    with ir.Location.name(name):
                        self.values[name] = self.constant(external.array(init), name)
            for i, node in enumerate(self.graph.node):
                with ir.Location.name(_node_name(node, i)):
                    self.node(node, i)
            func.ReturnOp([self.values[o.name] for o in self.graph.output])
        return module

    def constant(self, array: np.ndarray, hint: str) -> ir.Value:
        attr = self.weights.attr(array, hint)
        return create("tnx.constant", [], [attr.type], {"value": attr}).result

    def node(self, node: onnx.NodeProto, index: int) -> None:
        op = node.op_type
        name = _node_name(node, index)
        attrs = dict(OPS[op].attrs)
        attrs.update({a.name: _attr_value(a) for a in node.attribute})
        ins: list[Any] = [self.values[n] if n else None for n in node.input]  # None: an omitted optional input
        outs = [o for o in node.output if o]
        if op == "Split":
            self.split(node, name, ins[0], attrs)
            return
        if op == "TopK":  # two outputs: one op (and kernel) for each that is used
            rank = len(shape_of(ins[0]))
            attrs["axis"] = attrs["axis"] + rank if attrs["axis"] < 0 else attrs["axis"]
            for j, out in enumerate(node.output):
                if out and (out in self.used or j == 0):
                    self.values[out] = create(
                        "tnx.top_k", ins, [self.ttype(out, f"output of {label(name, op)}")], {**attrs, "output": j}
                    ).result
            return
        if op in GATES:  # LSTM, GRU, RNN: the input projection, the recurrence, views of its result
            types = [self.ttype(o, f"output of {label(name, op)}") if o else None for o in node.output]
            used = [bool(o) and (o in self.used or j == 0) for j, o in enumerate(node.output)]
            try:
                values = import_recurrent(op, ins, attrs, types, used)
            except ValueError as e:
                raise InvalidModelError(f"{label(name, op)}: {e}") from None
            for o, v in zip(node.output, values):
                if v is not None:
                    self.values[o] = v
            return
        if op == "LayerNormalization" and len(outs) > 1 and any(o in self.used for o in outs[1:]):
            self.layer_norm_with_statistics(node, name, ins, attrs)
            return
        if op == "BatchNormalization" and attrs["training_mode"]:
            self.batch_norm_training(node, name, ins, attrs)
            return
        if op == "Dropout" and len(node.output) > 1 and node.output[1] in self.used:
            self.dropout_with_mask(node, name, ins, attrs)
            return
        if len(outs) > 1 and any(o in self.used for o in outs[1:]):
            raise UnsupportedModelError(
                f"{label(name, op)}: only the first output is supported (outputs {list(outs[1:])} are used).",
                [(name, op, _opset(self.proto))],
            )
        out_name = outs[0]
        if op == "Constant":
            ((key, value),) = attrs.items()
            if key in ("sparse_value",):
                raise UnsupportedModelError(f"{label(name, op)}: sparse_value is not supported.")
            array = np.asarray(
                value,
                dtype=np.float32
                if key.startswith("value_float")
                else np.int64
                if key.startswith("value_int")
                else None,
            )
            self.values[out_name] = self.constant(array, out_name)
            return
        rtype = self.ttype(out_name, f"output of {label(name, op)}")
        if op in ("Conv", "MaxPool", "AveragePool", "LpPool"):
            x_shape = shape_of(ins[0])
            w_shape = shape_of(ins[1]) if op == "Conv" else None
            attrs = _spatial_defaults(op, attrs, x_shape, w_shape)
        if op == "ConvTranspose":
            attrs = _transpose_defaults(
                attrs,
                shape_of(ins[0]),
                shape_of(ins[1]),
                type_shape(rtype),
            )
        rank = len(shape_of(ins[0])) if ins and ins[0] is not None else 0
        if op == "Transpose" and attrs["perm"] is None:
            attrs["perm"] = list(range(rank))[::-1]
        if op in _AXIS_ATTRS and attrs.get("axis") is not None and attrs["axis"] < 0:
            attrs["axis"] += rank
        attrs = {k: v for k, v in attrs.items() if v is not None}
        if "value" in attrs and isinstance(attrs["value"], np.ndarray):
            attrs["value"] = self.weights.attr(attrs["value"], out_name)
        chain = OPS[op].variadic
        if chain:
            self.values[out_name] = self.chain(op, chain, ins, attrs, rtype)
            return
        self.values[out_name] = create(f"tnx.{snake(op)}", ins, [rtype], attrs).result

    def split(self, node: onnx.NodeProto, name: str, data: ir.Value, attrs: dict) -> None:
        """Split as one Slice per output (sizes from the inferred output shapes)."""
        rank = len(shape_of(data))
        axis = attrs["axis"] + rank if attrs["axis"] < 0 else attrs["axis"]
        start = 0
        for out in node.output:
            rtype = self.ttype(out, f"output of {label(name, node.op_type)}")
            size = type_shape(rtype)[axis]
            if out:  # canonical Slice form: full-rank starts and steps
                starts = [0] * rank
                starts[axis] = start
                self.values[out] = create("tnx.slice", [data], [rtype], dict(starts=starts, steps=[1] * rank)).result
            start += size

    def layer_norm_with_statistics(self, node: onnx.NodeProto, name: str, ins: list, attrs: dict) -> None:
        """LayerNormalization whose Mean and InvStdDev outputs are used, spelled out in tnx
        ops (as the spec's function body does): ReduceMean, Sub, Mul, Add, Sqrt, Reciprocal."""
        x, scale, bias = (ins + [None])[:3]
        xt = ir.RankedTensorType(x.type)
        rank = len(xt.shape)
        axis = attrs["axis"] + rank if attrs["axis"] < 0 else attrs["axis"]
        stat = tensor_type(shape_of(x)[:axis] + [1] * (rank - axis), xt.element_type)
        reduce = {"axes": list(range(axis, rank)), "keepdims": 1}
        mean = create("tnx.reduce_mean", [x], [stat], reduce).result
        d = create("tnx.sub", [x, mean], [xt]).result
        var = create("tnx.reduce_mean", [create("tnx.mul", [d, d], [xt]).result], [stat], reduce).result
        eps = self.constant(np.array(attrs["epsilon"], dtype=np_dtype(xt.element_type)), f"{name}_epsilon")
        inv = create(
            "tnx.reciprocal",
            [create("tnx.sqrt", [create("tnx.add", [var, eps], [stat]).result], [stat]).result],
            [stat],
        ).result
        y = create("tnx.mul", [create("tnx.mul", [d, inv], [xt]).result, scale], [xt]).result
        if bias is not None:
            y = create("tnx.add", [y, bias], [xt]).result
        for out, value in zip(node.output, (y, mean, inv)):
            if out:
                self.values[out] = value

    def dropout_with_mask(self, node: onnx.NodeProto, name: str, ins: list, attrs: dict) -> None:
        """Dropout-22 whose mask output is used, in inference mode: the output is the input
        (tnx.dropout, which tnx-canonicalize removes, and refuses in training mode) and the
        mask is all true (https://onnx.ai/onnx/operators/onnx__Dropout.html), a broadcast
        `true`."""
        out, mask = node.output[0], node.output[1]
        where = f"output of {label(name, node.op_type)}"
        y = create("tnx.dropout", ins, [self.ttype(out or mask, where)], attrs).result
        if out:
            self.values[out] = y
        true = self.constant(np.array(True), f"{name}_mask")
        self.values[mask] = create("tnx.expand", [true], [self.ttype(mask, where)]).result

    def batch_norm_training(self, node: onnx.NodeProto, name: str, ins: list, attrs: dict) -> None:
        """BatchNormalization-15 with training_mode=1, spelled out in tnx ops as the spec's
        reference (onnx.reference's op_batch_normalization) computes it: X normalized by the
        batch's mean and population variance over every axis but the channels (axis 1),
        then scaled and shifted per channel; running_mean = input_mean * momentum + mean *
        (1 - momentum), running_var the same of the variance
        (https://onnx.ai/onnx/operators/onnx__BatchNormalization.html)."""
        x, scale, bias, mean_in, var_in = ins
        xt = ir.RankedTensorType(x.type)
        dims, et = shape_of(x), xt.element_type
        if len(dims) < 2:
            raise InvalidModelError(f"{label(name, node.op_type)}: X has rank {len(dims)}; it must be N x C x ...")
        stat = tensor_type([1, dims[1]] + [1] * (len(dims) - 2), et)
        reduce = {"axes": [0, *range(2, len(dims))], "keepdims": 1}

        def typed(v: ir.Value, t: ir.Type, ttype: ir.RankedTensorType) -> ir.Value:
            """`v` reshaped to `ttype`'s shape, cast to element type `t` where it differs."""
            if ir.RankedTensorType(v.type).element_type != t:
                to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype(t)))
                v = create("tnx.cast", [v], [tensor_type(shape_of(v), t)], {"to": to}).result
            return create("tnx.reshape", [v], [ttype]).result if shape_of(v) != type_shape(ttype) else v

        mean = create("tnx.reduce_mean", [x], [stat], reduce).result
        d = create("tnx.sub", [x, mean], [xt]).result
        var = create("tnx.reduce_mean", [create("tnx.mul", [d, d], [xt]).result], [stat], reduce).result
        eps = self.constant(np.array(attrs["epsilon"], dtype=np_dtype(et)), f"{name}_epsilon")
        inv = create(
            "tnx.reciprocal",
            [create("tnx.sqrt", [create("tnx.add", [var, eps], [stat]).result], [stat]).result],
            [stat],
        ).result
        y = create("tnx.mul", [create("tnx.mul", [d, inv], [xt]).result, typed(scale, et, stat)], [xt]).result
        values = [create("tnx.add", [y, typed(bias, et, stat)], [xt]).result]
        momentum = attrs["momentum"]
        for batch, running, out in zip((mean, var), (mean_in, var_in), node.output[1:3]):
            if not out:
                values.append(None)
                continue
            rt = self.ttype(out, f"output of {label(name, node.op_type)}")
            kept = self.constant(np.array(momentum, dtype=np_dtype(rt.element_type)), f"{name}_momentum")
            new = self.constant(np.array(1.0 - momentum, dtype=np_dtype(rt.element_type)), f"{name}_1_momentum")
            values.append(
                create(
                    "tnx.add",
                    [
                        create("tnx.mul", [typed(running, rt.element_type, rt), kept], [rt]).result,
                        create("tnx.mul", [typed(batch, rt.element_type, rt), new], [rt]).result,
                    ],
                    [rt],
                ).result
            )
        for out, value in zip(node.output, values):
            if out and value is not None:
                self.values[out] = value

    def chain(self, op: str, binary: str, ins: list, attrs: dict, rtype: ir.RankedTensorType) -> ir.Value:
        """An N-ary op as a left-leaning chain of a binary tnx op (Mean: then divided by N)."""
        acc = ins[0]
        if len(ins) == 1:
            acc = create("tnx.identity", ins, [rtype], {}).result
        for j, nxt in enumerate(ins[1:], 1):
            shape = shape_of(acc)
            if op == "Concat":
                shape[attrs["axis"]] += shape_of(nxt)[attrs["axis"]]
            else:
                shape = broadcast_shapes(shape, shape_of(nxt))
            ttype = rtype if j == len(ins) - 1 and op != "Mean" else tensor_type(shape, rtype.element_type)
            acc = create(f"tnx.{snake(binary)}", [acc, nxt], [ttype], attrs if op == "Concat" else {}).result
        if op == "Mean":
            n = self.constant(np.array(len(ins), dtype=np_dtype(rtype.element_type)), f"{op}_count")
            acc = create("tnx.div", [acc, n], [rtype], {}).result
        return acc
