"""Run-time control flow: a model whose If, Loop or Scan nodes are decided by values becomes
a program, a plan of structured steps over compiled sub-artifacts.

The prepared graph (after `importers.control_flow.specialize` has decided what it can) is
cut at each top-level If, Loop and Scan, in graph order:

  graph   the nodes between two control-flow nodes, as one ONNX model compiled by
          `tritonnx.compile` into `steps/<k>/` (fused, tiled, with its own dumps); its
          inputs are the values it reads from before it, its outputs the values read after
          it or returned
  if      `then_branch` and `else_branch`, each compiled as a model into
          `steps/<k>/then_branch/` and `steps/<k>/else_branch/`; its inputs are the outer
          values the branch reads
  loop    `body` compiled into `steps/<k>/body/` (inputs: iteration number, condition, the
          loop-carried values, then the outer values it reads)
  scan    `body` compiled into `steps/<k>/body/` (inputs: the state values, one slice of
          each scan input, then the outer values it reads)
  host    an op over sequences or optionals, or NonMaxSuppression, run on the host (and
          the data-dependent ops `importers.bounded` leaves)
  bind    the count of a data-dependent size (`importers.bounded`: NonZero, Compress,
          Unique, a run-time TopK K, written as kernels of the graph step before it): read, checked
          against the bound, and the first `count` entries of the padded result passed on

Sub-models whose input sizes the outer graph does not fix (a loop-carried value that grows,
a branch output of either size) get dynamic dimensions, so one sub-artifact runs at every
size. A body that holds control flow of its own compiles to a program in turn.

The runtime (`tritonnx.runtime.program`) runs the steps in order; an `if` reads its
condition, a `loop` its trip count and each iteration's condition, a `bind` its count from
the device: those are the program's sync points (`plan["host_reads"]`, shown by `tritonnx report`).
CUDA graphs cover each compiled sub-artifact, the launches between sync points.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import onnx
from onnx import helper

from tritonnx.dialects.verify import node_names
from tritonnx.errors import UnsupportedModelError
from tritonnx.importers import bounded
from tritonnx.importers.control_flow import HOST_VALUES
from tritonnx.runtime import format as artifact_format

_SUBGRAPHS = {"If": ("then_branch", "else_branch"), "Loop": ("body",), "Scan": ("body",)}


def is_control(node: onnx.NodeProto) -> bool:
    """A node that is a step of its own: control flow, an op over host-side values, or the
    Bind of a data-dependent size (`importers.bounded`)."""
    return bounded.is_bind(node) or (
        node.domain in ("", "ai.onnx") and (node.op_type in _SUBGRAPHS or node.op_type in HOST_VALUES)
    )


def _used_names(graph: onnx.GraphProto) -> set[str]:
    """Names `graph` reads that it does not define (its outer-scope captures), subgraphs of
    its nodes included."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {o for n in graph.node for o in n.output}
    used: set[str] = set()
    for n in graph.node:
        used.update(i for i in n.input if i)
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
                used |= _used_names(g)
    return {u for u in used if u not in defined}


def _reads(node: onnx.NodeProto) -> set[str]:
    """Every outer name a node reads: its inputs and its subgraphs' captures."""
    names = {i for i in node.input if i}
    for a in node.attribute:
        for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
            names |= _used_names(g)
    return names


class _Types:
    """Value infos of the prepared graph by name; sizes it does not fix become dim_params."""

    def __init__(self, graph: onnx.GraphProto, fresh: Iterator[int]):
        self.infos = {vi.name: vi for vi in list(graph.input) + list(graph.value_info) + list(graph.output)}
        self.inits = {t.name: t for t in graph.initializer}
        self.fresh = fresh  # numbers of new dim_params, shared by one program's sub-models

    def info(self, name: str, where: str, host: bool = False) -> onnx.ValueInfoProto:
        """A ValueInfoProto of `name` for a sub-model's input or output, every unknown size a
        new dim_param; with `host`, a sequence or an optional as it is. Raises
        UnsupportedModelError for a value that is not a tensor of known rank (or, without
        `host`, a sequence or an optional)."""
        vi = self.infos.get(name)
        if host and vi is not None and vi.type.WhichOneof("value") in ("sequence_type", "optional_type"):
            return vi
        if vi is None and name in self.inits:
            t = self.inits[name]
            return helper.make_tensor_value_info(name, t.data_type, list(t.dims))
        if vi is None or vi.type.WhichOneof("value") != "tensor_type" or not vi.type.tensor_type.HasField("shape"):
            kind = vi.type.WhichOneof("value") if vi is not None else "unknown"
            raise UnsupportedModelError(
                f"{where}: value '{name}' is {'a ' + kind if kind != 'tensor_type' else 'a tensor of unknown rank'}; "
                "tritonnx passes only tensors of known rank between control-flow steps."
            )
        dims: list[int | str] = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value >= 0:
                dims.append(d.dim_value)
            elif d.HasField("dim_param") and d.dim_param.isidentifier():
                dims.append(d.dim_param)  # the model's own symbol (a sympy expression is not one)
            else:
                dims.append(f"cf{next(self.fresh)}")
        return helper.make_tensor_value_info(name, vi.type.tensor_type.elem_type, dims)


def _ranks_from_body(types: _Types, node: onnx.NodeProto, body: onnx.ModelProto) -> None:
    """Gives each output of control-flow `node` that onnx's inference left without a rank
    the rank its (compiled) subgraph gives it, every size dynamic: an If's branch output
    as it is, a Loop's or Scan's state as it is and a scan output with one axis more."""
    inferred = onnx.shape_inference.infer_shapes(body).graph.output
    skip = 1 if node.op_type == "Loop" else 0  # a Loop body's first output is its condition
    n_state = (
        len(node.input) - 2
        if node.op_type == "Loop"
        else len(node.input) - next((a.i for a in node.attribute if a.name == "num_scan_inputs"), 0)
    )
    for k, name in enumerate(node.output):
        known = types.infos.get(name)
        if not name or (known is not None and known.type.tensor_type.HasField("shape")):
            continue
        if skip + k >= len(inferred) or not inferred[skip + k].type.tensor_type.HasField("shape"):
            continue
        vi = inferred[skip + k]
        rank = len(vi.type.tensor_type.shape.dim) + (node.op_type != "If" and k >= n_state)
        dims = [f"cf{next(types.fresh)}" for _ in range(rank)]
        types.infos[name] = helper.make_tensor_value_info(name, vi.type.tensor_type.elem_type, dims)


def _submodel(proto: onnx.ModelProto, name: str, nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(inits))
    model = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    model.functions.extend(proto.functions)
    return model


def _body_model(proto: onnx.ModelProto, node: onnx.NodeProto, graph: onnx.GraphProto, where: str, types: _Types):
    """(the sub-model of subgraph `graph` of `node`, the outer names it captures, in order).
    A formal input without a shape takes its rank from the outer value it stands for (a
    Loop's carried value, a Scan's state), with dynamic sizes: they may change per iteration."""
    used = sorted(_used_names(graph))
    captures = [c for c in used if c not in types.inits]  # outer initializers go in as its own
    weights = [types.inits[c] for c in used if c in types.inits]
    sub_types = _Types(graph, types.fresh)
    outer: dict[str, str] = {}  # formal input -> the outer value it starts as
    if node.op_type == "Loop":
        outer = {vi.name: x for vi, x in zip(graph.input[2:], node.input[2:]) if x}
    elif node.op_type == "Scan":
        outer = {vi.name: x for vi, x in zip(graph.input, node.input) if x}
    inputs = []
    for vi in graph.input:
        if vi.type.WhichOneof("value") in ("sequence_type", "optional_type"):
            inputs.append(vi)  # a host-side value: the body compiles to a program
        elif vi.type.tensor_type.HasField("shape"):
            inputs.append(sub_types.info(vi.name, where))
        elif vi.name in outer and node.op_type == "Loop":
            rank = len(types.info(outer[vi.name], where).type.tensor_type.shape.dim)
            dims = [f"cf{next(types.fresh)}" for _ in range(rank)]
            inputs.append(helper.make_tensor_value_info(vi.name, vi.type.tensor_type.elem_type, dims))
        else:
            inputs.append(sub_types.info(vi.name, where))  # raises: a tensor of unknown rank
    inputs += [types.info(c, where, host=True) for c in captures]
    outputs = list(graph.output)  # tensors (their shapes inferred), or host-side values: a program
    return _submodel(
        proto, where.replace("/", "_"), graph.node, inputs, outputs, [*graph.initializer, *weights]
    ), captures


def write(work: Path, prepared: onnx.ModelProto, source: onnx.ModelProto, compile_step) -> dict:
    """Writes the program of `prepared` (a prepared ONNX model with top-level control flow)
    into `work`: each step's sub-artifact under `steps/`, the source model as model.onnx, and
    plan.json. `compile_step(model, out_dir, dump_name)` compiles one sub-model (the caller's
    `tritonnx.compile` with its options). Returns the plan. Raises UnsupportedModelError
    for a value between steps that is not a tensor of known rank."""
    graph = onnx.GraphProto()
    graph.CopyFrom(prepared.graph)
    bounded.rewrite(graph, dict(enumerate(node_names(graph))), _reads)  # data-dependent sizes: kernels, then a bind
    types = _Types(graph, itertools.count(1))
    nodes = list(zip(node_names(graph), graph.node))
    outputs = {o.name for o in graph.output}
    # which names each later position reads: a step's outputs are what is read after it
    read_after: list[set[str]] = [set() for _ in range(len(nodes) + 1)]
    read_after[len(nodes)] = set(outputs)
    for i in range(len(nodes) - 1, -1, -1):
        read_after[i] = read_after[i + 1] | _reads(nodes[i][1])
    inits = {t.name: t for t in graph.initializer}
    constant_outputs = sorted(o for o in outputs if o in inits)
    if constant_outputs:
        raise UnsupportedModelError(
            "graph outputs that are initializers are not supported around control flow yet: "
            + ", ".join(constant_outputs)
        )
    source_opset = next((p.value for p in prepared.metadata_props if p.key == "tritonnx.source_opset"), "")
    scan8 = (
        [name for name, n in nodes if n.op_type == "Scan"] if source_opset.isdigit() and int(source_opset) < 9 else []
    )
    if scan8:
        raise UnsupportedModelError(
            f"Scan-8 (a batch axis and sequence_lens) is not supported: {', '.join(scan8)} (Scan, opset "
            f"{source_opset}); Scan-9 and later are."
        )
    steps: list[dict] = []
    host_reads: list[str] = []
    (work / "steps").mkdir(parents=True)

    def graph_step(start: int, end: int) -> None:
        chunk = [n for _, n in nodes[start:end]]
        produced = {o for n in chunk for o in n.output if o}
        reads = set().union(*(_reads(n) for n in chunk)) if chunk else set()
        ins = sorted(r for r in reads if r not in produced and r not in inits)
        outs = sorted(o for o in produced if o in read_after[end])
        if not outs:
            return
        k = len(steps)
        where = f"steps/{k}"
        model = _submodel(
            prepared,
            f"step{k}",
            chunk,
            [types.info(n, where) for n in ins],
            [types.info(n, where) for n in outs],
            [inits[r] for r in sorted(reads) if r in inits],
        )
        compile_step(model, work / where, where)
        steps.append({"step": "graph", "dir": where, "inputs": ins, "outputs": outs})

    constants: dict[str, dict] = {}  # initializers a control-flow node reads itself: in the plan
    start = 0
    for i, (name, node) in enumerate(nodes):
        if not is_control(node):
            continue
        for x in node.input:
            if x in inits and x not in constants:
                constants[x] = _constant(inits[x], name)
        graph_step(start, i)
        start = i + 1
        k = len(steps)
        where = f"steps/{k}"
        if bounded.is_bind(node):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            steps.append(
                {
                    "step": "bind",
                    "node": name,
                    "inputs": list(node.input[:-1]),
                    "count": node.input[-1],
                    "outputs": list(node.output),
                    "axis": attrs["axis"],
                    "bound": attrs["bound"],
                }
            )
            host_reads.append(f"{name}: {attrs['sync'].decode()}, the size of its output")
            continue
        if node.op_type in HOST_VALUES:
            steps.append(_host_step(node, name))
            if node.op_type in ("NonZero", "Compress", "Unique", "NonMaxSuppression"):
                host_reads.append(f"{name}: reads the size of its output, which depends on the values")
            elif node.op_type in ("SequenceAt", "SequenceInsert", "SequenceErase") and len(node.input) > 1 + (
                node.op_type == "SequenceInsert"
            ):
                host_reads.append(f"{name}: reads its position")
            continue
        attrs = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
        step: dict = {"step": node.op_type.lower(), "node": name, "outputs": list(node.output)}
        for attr in _SUBGRAPHS[node.op_type]:
            model, captures = _body_model(prepared, node, attrs[attr], f"{where}/{attr}", types)
            compile_step(model, work / where / attr, f"{where}/{attr}")
            _ranks_from_body(types, node, model)
            step[attr] = {
                "dir": f"{where}/{attr}",
                "inputs": [vi.name for vi in attrs[attr].input],
                "captures": captures,
                "outputs": [vi.name for vi in attrs[attr].output],
            }
        step["inputs"] = list(node.input)
        if node.op_type == "If":
            host_reads.append(f"{name}: reads its condition {node.input[0]!r}")
        elif node.op_type == "Loop":
            host_reads.append(f"{name}: reads its trip count and each iteration's condition")
        else:
            attrs_int = {a.name: (list(a.ints) if a.ints else a.i) for a in node.attribute if a.name != "body"}
            step["attributes"] = attrs_int
        steps.append(step)
    graph_step(start, len(nodes))
    from tritonnx.importers import external

    external.save(source, work / "model.onnx")  # external data: copied into model.onnx.data
    plan = {
        "format": artifact_format.FORMAT,
        "version": artifact_format.VERSION,
        "program": True,
        "inputs": [
            {"name": vi.name, **_spec(types.info(vi.name, "graph input", host=True))}
            for vi in graph.input
            if vi.name not in inits
        ],
        "outputs": [{"name": o.name, **_spec(types.info(o.name, "graph output", host=True))} for o in graph.output],
        "constants": constants,
        "steps": steps,
        "host_reads": host_reads,
    }
    plan["files"] = {
        p.relative_to(work).as_posix(): artifact_format.sha256_file(p) for p in sorted(work.glob("steps/**/plan.json"))
    } | {p.relative_to(work).as_posix(): artifact_format.sha256_file(p) for p in sorted(work.glob("model.onnx*"))}
    (work / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan


CONSTANT_LIMIT = 1 << 16  # elements: the largest initializer a control-flow node may read directly


def _constant(t: onnx.TensorProto, node: str) -> dict:
    """{"dtype", "shape", "values"} of an initializer that a control-flow node reads (a trip
    count, a condition, a first loop-carried value), for the program's plan. Raises
    UnsupportedModelError for one over CONSTANT_LIMIT elements."""
    from onnx import numpy_helper

    array = numpy_helper.to_array(t)
    if array.size > CONSTANT_LIMIT or t.data_type == onnx.TensorProto.BFLOAT16:
        raise UnsupportedModelError(
            f"node {node} reads initializer '{t.name}' ({array.size} elements, {array.dtype}) directly; tritonnx "
            f"keeps at most {CONSTANT_LIMIT} elements of float, int or bool there."
        )
    return {"dtype": array.dtype.name, "shape": list(array.shape), "values": array.reshape(-1).tolist()}


def _spec(vi: onnx.ValueInfoProto) -> dict:
    """{"shape", "dtype"} of a tensor, with "kind": "sequence" or "optional" (and the
    element's shape and dtype) for a host-side value."""
    import numpy as np

    kind, t = "tensor", vi.type
    while t.WhichOneof("value") in ("sequence_type", "optional_type"):
        if kind == "tensor":
            kind = t.WhichOneof("value").removesuffix("_type")
        t = t.sequence_type.elem_type if t.WhichOneof("value") == "sequence_type" else t.optional_type.elem_type
    if t.WhichOneof("value") != "tensor_type":
        raise UnsupportedModelError(f"value '{vi.name}' is not a tensor, a sequence of them or an optional one.")
    tt = t.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    dtype = (
        "bfloat16"
        if tt.elem_type == onnx.TensorProto.BFLOAT16
        else np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
    )
    return {"shape": dims, "dtype": dtype} | ({"kind": kind} if kind != "tensor" else {})


def _host_step(node: onnx.NodeProto, name: str) -> dict:
    """A `host` step: an op over sequences or optionals that the runtime runs on the host
    (`runtime.program`), its attributes as JSON values."""
    attrs: dict = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.INT:
            attrs[a.name] = a.i
        elif a.type == onnx.AttributeProto.INTS:
            attrs[a.name] = list(a.ints)
        elif a.type == onnx.AttributeProto.FLOAT:
            attrs[a.name] = a.f
        elif a.name != "type":  # Optional's `type` only types an empty optional
            raise UnsupportedModelError(f"node {name} ({node.op_type}): attribute {a.name} is not supported.")
    return {
        "step": "host",
        "node": name,
        "op": node.op_type,
        "inputs": list(node.input),
        "outputs": list(node.output),
        "attributes": attrs,
    }
