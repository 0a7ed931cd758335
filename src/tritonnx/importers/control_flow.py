"""Control flow decided at compile time: `If`, `Loop` and `Scan` nodes whose condition or
trip count the compiler knows are replaced by the nodes they run, so the rest of the
pipeline fuses and tiles them like any others.

- `If` (If-21) with a condition known at compile time (an initializer, a Constant, or a
  small computation of them and of static shapes): the chosen branch's nodes, inlined.
- `Scan` (Scan-21, and Scan-8 without `sequence_lens`) over scan inputs of static length L:
  L copies of the body; each iteration reads its slice with a Gather and the scan outputs
  are the iterations' values stacked with Unsqueeze and Concat along `scan_output_axes`,
  in the order `scan_input_directions` and `scan_output_directions` give.
- `Loop` (Loop-21) with a trip count known at compile time, whose loop condition cannot
  end it early (absent or a constant true, and the body passes it through unchanged or
  returns a constant true): trip-count copies of the body, the iteration number a
  constant of each copy, the scan outputs stacked along a new first axis.

Unrolled nodes are named `<node>/<k>/<body node>` (If: `<node>/<branch>/<node>`), so the
dumps and the report show where each came from. A node is unrolled only while the copies
stay under UNROLL_LIMIT nodes; control flow left after this (a condition or trip count
computed from the inputs' values, a body that can end the loop early) is refused by
`remaining` with the reason: tritonnx has no run-time control flow yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tritonnx.dialects.verify import node_names
from tritonnx.importers import bounded
from tritonnx.runtime.format import HOST_OPS

CONTROL_FLOW = ("If", "Loop", "Scan")
# host steps of a program (`compiler.program`): ops over sequences and optionals (host-side
# values), and ops whose output size depends on the values (a sync point each)
HOST_VALUES = tuple(sorted(HOST_OPS))
UNROLL_LIMIT = 4096  # nodes: at most this many copies of a body's nodes per node unrolled
_FOLD_ELEMENTS = 1 << 16  # elements: the largest intermediate `_constant` evaluates


def _is_control(node: onnx.NodeProto) -> bool:
    return node.domain in ("", "ai.onnx") and node.op_type in CONTROL_FLOW


def _graph_attr(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    return next(a.g for a in node.attribute if a.name == name)


def _ints(node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.type == onnx.AttributeProto.INTS else [a.i]
    return default


class _Values:
    """What the compiler knows of the graph's values: initializers, Constant outputs, static
    shapes (from shape inference), and small computations of them (`constant`)."""

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)
        # the opset the user's model imports (`importers.onnx.SOURCE_OPSET`): Scan-8's batch axis
        # and sequence_lens are not what the version converter's Scan-21 holds
        source = next((p.value for p in model.metadata_props if p.key == "tritonnx.source_opset"), "")
        self.source_opset = int(source) if source.isdigit() else self.opset
        self.known: dict[str, np.ndarray] = {}
        self.initializers = {t.name: t for t in graph.initializer}  # read when asked for
        self.producer = {o: n for n in graph.node for o in n.output if o}
        self.shapes: dict[str, list[int] | None] = {}
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            t = vi.type.tensor_type
            if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
                self.shapes[vi.name] = [d.dim_value for d in t.shape.dim]
        for t in graph.initializer:
            self.shapes[t.name] = list(t.dims)

    def constant(self, name: str, depth: int = 0) -> np.ndarray | None:
        """The value of `name` when the compiler can know it, else None."""
        if name in self.known:
            return self.known[name]
        if name in self.initializers:
            t = self.initializers[name]
            if np.prod(t.dims) > _FOLD_ELEMENTS or t.data_location == onnx.TensorProto.EXTERNAL:
                return None  # a weight, never a condition or a trip count
            self.known[name] = numpy_helper.to_array(t)
            return self.known[name]
        node = self.producer.get(name)
        if node is None or depth > 32 or _is_control(node) or node.domain not in ("", "ai.onnx"):
            return None
        if node.op_type.startswith("Random") or node.op_type in ("Bernoulli", "Multinomial"):
            return None
        if node.op_type == "Shape" and self.shapes.get(node.input[0]) is not None:
            full = np.array(self.shapes[node.input[0]], np.int64)
            start, end = _ints(node, "start", [0])[0], _ints(node, "end", [len(full)])[0]
            self.known[name] = full[start:end]
        else:
            inputs = {i: self.constant(i, depth + 1) for i in node.input if i}
            if any(v is None or v.size > _FOLD_ELEMENTS for v in inputs.values()):
                return None
            self._evaluate(node, inputs)
        return self.known.get(name)

    def _evaluate(self, node: onnx.NodeProto, inputs: dict) -> None:
        """Evaluates `node` on `inputs` with onnx.reference into `known` (nothing when the
        reference cannot run it)."""
        from onnx.reference import ReferenceEvaluator

        outputs = [o for o in node.output if o]
        graph = helper.make_graph(
            [node],
            "fold",
            [
                helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                for i, v in inputs.items()
            ],
            [helper.make_empty_tensor_value_info(o) for o in outputs],
        )
        try:
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
            values = ReferenceEvaluator(model).run(None, inputs)
        except Exception:  # noqa: BLE001 - a node the reference cannot run is not known
            return
        for o, v in zip(outputs, values):
            self.known[o] = np.asarray(v)


class _Copy:
    """One copy of a subgraph's nodes in the outer graph: values it produces are renamed
    `<prefix><name>`, its formal inputs bound to outer names, its initializers added once
    per node (`shared` prefix), outer-scope names left as they are."""

    def __init__(self, body: onnx.GraphProto, prefix: str, shared: str, bind: dict[str, str]):
        self.names = dict(bind)
        for t in body.initializer:
            self.names[t.name] = shared + t.name
        for n in body.node:
            for o in n.output:
                if o:
                    self.names[o] = prefix + o
        self.nodes = []
        for n, name in zip(body.node, _names(body)):
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            copy.name = prefix + name
            copy.input[:] = [self.names.get(x, x) if x else x for x in n.input]
            copy.output[:] = [self.names.get(x, x) if x else x for x in n.output]
            for a in copy.attribute:  # a nested subgraph reads the copy's values by their new names
                for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
                    _rename_reads(g, self.names)
            self.nodes.append(copy)

    def out(self, name: str) -> str:
        return self.names.get(name, name)


def _rename_reads(graph: onnx.GraphProto, names: dict[str, str]) -> None:
    """Renames, in place, what `graph` and its nested subgraphs read from outside them."""
    local = (
        {i.name for i in graph.input} | {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
    )
    outer = {k: v for k, v in names.items() if k not in local}
    for n in graph.node:
        n.input[:] = [outer.get(x, x) if x else x for x in n.input]
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
                _rename_reads(g, outer)
    for o in graph.output:
        if o.name in outer:  # a subgraph output that is an outer value
            o.name = outer[o.name]


def _names(graph: onnx.GraphProto) -> list[str]:
    return node_names(graph)


def _has_subgraphs(graph: onnx.GraphProto) -> bool:
    return any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute
    )


def _const(name: str, value, made: list) -> str:
    made.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def _body_initializers(body: onnx.GraphProto, shared: str) -> list[onnx.TensorProto]:
    out = []
    for t in body.initializer:
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.name = shared + t.name
        out.append(c)
    return out


def _inline_if(node, name, values: _Values, made: list) -> list | None:
    cond = values.constant(node.input[0])
    if cond is None or cond.size != 1:
        return None
    branch = "then_branch" if bool(cond.reshape(())) else "else_branch"
    body = _graph_attr(node, branch)
    copy = _Copy(body, f"{name}/{branch}/", f"{name}/{branch}/", {})
    made.extend(_body_initializers(body, f"{name}/{branch}/"))
    nodes = copy.nodes
    for k, (out, result) in enumerate(zip(body.output, node.output)):
        if result:
            nodes.append(helper.make_node("Identity", [copy.out(out.name)], [result], name=f"{name}/output_{k}"))
    return nodes


def _unroll_scan(node, name, values: _Values, made: list) -> list | None:
    body = _graph_attr(node, "body")
    if values.source_opset < 9:
        return None
    inputs = list(node.input)
    m = _ints(node, "num_scan_inputs", [0])[0]
    n_state = len(inputs) - m
    if n_state < 0:
        return None
    scans = inputs[n_state:]
    in_axes = _ints(node, "scan_input_axes", [0] * m)
    in_dirs = _ints(node, "scan_input_directions", [0] * m)
    k_out = len(body.output) - n_state
    out_axes = _ints(node, "scan_output_axes", [0] * k_out)
    out_dirs = _ints(node, "scan_output_directions", [0] * k_out)
    lengths = set()
    for x, axis in zip(scans, in_axes):
        shape = values.shapes.get(x)
        if shape is None:
            return None
        lengths.add(shape[axis % len(shape)])
    if len(lengths) != 1:
        return None
    (steps,) = lengths
    if steps == 0 or steps * len(body.node) > UNROLL_LIMIT:
        return None
    ranks = [_rank(body.output[n_state + k]) for k in range(k_out)]
    if any(axis < 0 and rank is None for axis, rank in zip(out_axes, ranks)):
        return None  # a negative output axis needs the output's rank
    stack_axes = [axis if axis >= 0 else axis + (rank or 0) + 1 for axis, rank in zip(out_axes, ranks)]
    made.extend(_body_initializers(body, f"{name}/"))
    nodes: list = []
    state = inputs[:n_state]
    per_step: list[list[str]] = [[] for _ in range(k_out)]
    for t in range(steps):
        prefix = f"{name}/{t}/"
        bind = {body.input[i].name: state[i] for i in range(n_state)}
        for j, (x, axis, direction) in enumerate(zip(scans, in_axes, in_dirs)):
            at = t if direction == 0 else steps - 1 - t
            index = _const(f"{prefix}index_{j}", np.int64(at), made)
            piece = f"{prefix}slice_{j}"
            rank = len(values.shapes[x] or ())
            nodes.append(helper.make_node("Gather", [x, index], [piece], name=f"{prefix}slice_{j}", axis=axis % rank))
            bind[body.input[n_state + j].name] = piece
        copy = _Copy(body, prefix, f"{name}/", bind)
        nodes += copy.nodes
        state = [copy.out(o.name) for o in body.output[:n_state]]
        for k in range(k_out):
            per_step[k].append(copy.out(body.output[n_state + k].name))
    order = [values if d == 0 else values[::-1] for values, d in zip(per_step, out_dirs)]
    return nodes + _results(node, name, state, order, stack_axes, made)


def _rank(vi: onnx.ValueInfoProto) -> int | None:
    t = vi.type.tensor_type
    return len(t.shape.dim) if t.HasField("shape") else None


def _results(node, name: str, state: list[str], per_step: list[list[str]], axes: list[int], made: list) -> list:
    """The nodes giving an unrolled Loop's or Scan's outputs: its final states (Identity),
    then each scan output, the iterations' values (in `per_step[k]`'s order) stacked along
    `axes[k]` with Unsqueeze and Concat."""
    n_state = len(state)
    nodes = [
        helper.make_node("Identity", [v], [result], name=f"{name}/state_{i}")
        for i, (v, result) in enumerate(zip(state, node.output[:n_state]))
        if result
    ]
    for k, result in enumerate(node.output[n_state:]):
        if not result:
            continue
        axis = _const(f"{name}/axes_{k}", np.array([axes[k]], np.int64), made)
        pieces = [f"{name}/stack_{k}/{t}" for t in range(len(per_step[k]))]
        nodes += [helper.make_node("Unsqueeze", [v, axis], [p], name=p) for v, p in zip(per_step[k], pieces)]
        nodes.append(helper.make_node("Concat", pieces, [result], name=f"{name}/output_{k}", axis=axes[k]))
    return nodes


def _cond_passes_through(body: onnx.GraphProto) -> bool:
    """Whether the body's condition output is its condition input or a constant true."""
    cond_in, cond_out = body.input[1].name, body.output[0].name
    producer = {o: n for n in body.node for o in n.output}
    seen = 0
    while cond_out != cond_in and seen < 16:
        seen += 1
        init = next((t for t in body.initializer if t.name == cond_out), None)
        if init is not None:
            return bool(numpy_helper.to_array(init).all())
        n = producer.get(cond_out)
        if n is None:
            return False
        if n.op_type == "Identity":
            cond_out = n.input[0]
        elif n.op_type == "Constant":
            value = next((a for a in n.attribute if a.name == "value"), None)
            return value is not None and bool(numpy_helper.to_array(value.t).all())
        else:
            return False
    return cond_out == cond_in


def _unroll_loop(node, name, values: _Values, made: list) -> list | None:
    body = _graph_attr(node, "body")
    trips_name = node.input[0] if len(node.input) > 0 else ""
    cond_name = node.input[1] if len(node.input) > 1 else ""
    if not trips_name:
        return None
    trips = values.constant(trips_name)
    if trips is None or trips.size != 1:
        return None
    steps = int(trips.reshape(()))
    if cond_name:
        cond = values.constant(cond_name)
        if cond is None or not bool(cond.reshape(())):
            return None
    if not _cond_passes_through(body):
        return None
    carried = list(node.input[2:])
    n_state = len(carried)
    k_out = len(body.output) - 1 - n_state
    if steps <= 0 or steps * len(body.node) > UNROLL_LIMIT:
        return None
    made.extend(_body_initializers(body, f"{name}/"))
    true = _const(f"{name}/cond", np.array(True), made)
    nodes: list = []
    state = carried
    per_step: list[list[str]] = [[] for _ in range(k_out)]
    for t in range(steps):
        prefix = f"{name}/{t}/"
        bind = {body.input[0].name: _const(f"{prefix}iteration_num", np.int64(t), made), body.input[1].name: true}
        bind.update({body.input[2 + i].name: state[i] for i in range(n_state)})
        copy = _Copy(body, prefix, f"{name}/", bind)
        nodes += copy.nodes
        state = [copy.out(o.name) for o in body.output[1 : 1 + n_state]]
        for k in range(k_out):
            per_step[k].append(copy.out(body.output[1 + n_state + k].name))
    return nodes + _results(node, name, state, per_step, [0] * k_out, made)


_SPECIALIZE = {"If": _inline_if, "Scan": _unroll_scan, "Loop": _unroll_loop}


def specialize(model: onnx.ModelProto) -> bool:
    """Replaces, in place, each top-level If, Loop and Scan of `model` that the compiler can
    decide (see the module docstring) by the nodes it runs. Returns whether anything
    changed (a caller infers shapes again then: a branch inlined may hold more control
    flow). A body that holds control flow of its own is inlined only for If."""
    graph = model.graph
    if not any(_is_control(n) for n in graph.node):
        return False
    values = _Values(model)
    out: list[Any] = []
    made: list = []
    changed = False
    for node, name in zip(graph.node, _names(graph)):
        nodes = None
        if _is_control(node):
            body = _graph_attr(node, "then_branch" if node.op_type == "If" else "body")
            if node.op_type == "If" or not _has_subgraphs(body):
                nodes = _SPECIALIZE[node.op_type](node, name, values, made)
        if nodes is None:
            out.append(node)
        else:
            out.extend(nodes)
            changed = True
    if changed:
        del graph.node[:]
        graph.node.extend(out)
        graph.initializer.extend(made)
    return changed


def nodes(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(node name, op type) of each top-level If, Loop and Scan of `model`, and of each op
    over sequences and optionals (HOST_VALUES); a graph input or output that is a sequence
    or an optional counts too, as ("", "sequence" or "optional")."""
    constant = bounded.constants(model.graph)
    out = [
        (name, n.op_type)
        for n, name in zip(model.graph.node, _names(model.graph))
        if _is_control(n)
        or (n.domain in ("", "ai.onnx") and n.op_type in HOST_VALUES)
        or bounded.data_dependent_top_k(n, constant)
    ]
    for vi in list(model.graph.input) + list(model.graph.output):
        kind = vi.type.WhichOneof("value")
        if kind in ("sequence_type", "optional_type"):
            out.append((vi.name, kind.removesuffix("_type")))
    return out


def remaining(model: onnx.ModelProto) -> list[tuple[str, str, str]]:
    """(node name, op type, why tritonnx cannot compile it as one straight-line artifact)
    of each top-level If, Loop and Scan left after `specialize` and each op over sequences
    and optionals: what only a program (`compiler.program`) runs."""
    if not nodes(model):
        return []
    out = []
    values = _Values(model)
    constant = bounded.constants(model.graph)
    for node, name in zip(model.graph.node, _names(model.graph)):
        if bounded.data_dependent_top_k(node, constant):
            out.append((name, node.op_type, "its K is computed at run time (a size read by a program's bind step)"))
        if node.domain in ("", "ai.onnx") and node.op_type in HOST_VALUES:
            out.append(
                (name, node.op_type, "a host step of a program (a sequence, an optional, or a size from the values)")
            )
        if not _is_control(node):
            continue
        if node.op_type == "If":
            why = "its condition is computed from the inputs' values at run time"
        elif node.op_type == "Loop":
            why = (
                "its trip count or its condition is computed at run time (a Loop is unrolled when "
                "its trip count is known at compile time and its condition cannot end it early)"
            )
        elif values.source_opset < 9:
            why = "Scan-8 (a batch axis and sequence_lens) is not supported; Scan-9 and later are"
        else:
            why = "its scan inputs have no static length, or the unrolled body would be too large"
        out.append((name, node.op_type, why))
    return out
