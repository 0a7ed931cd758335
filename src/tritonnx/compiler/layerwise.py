"""`tritonnx run ART --check-layers`: every launch's output against onnxruntime's value of
the ONNX tensor it holds, and the first launch that diverges (Polygraphy's layerwise
comparison, "first mismatching layer").

onnxruntime computes every intermediate tensor at once: a copy of the artifact's model.onnx
with every node output marked as a graph output ("mark all"), run once on the CPU.

Node names: a launch's `nodes` (plan.json) are the names the importer gave the ONNX nodes:
a node's own name, and for an unnamed one `<OpType>_<index>` with its index in the graph as
the importer read it (`tritonnx.importers.onnx.prepare` of model.onnx: functions inlined,
converted to opset 21, small constant subgraphs folded), not in model.onnx itself. The
prepared graph is rebuilt here the same way to map those names back to nodes and tensors.
The reference values come from the model as the user gave it (model.onnx), by tensor name:
a tensor that only the preparation created (an inlined function's inner value) has no
reference and is not compared.
"""

from __future__ import annotations

import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritonnx.errors import ArtifactError, InputError

_PROTOBUF_LIMIT = 2**31 - 1 - 2**20  # a model larger than this is handed to onnxruntime by path


@dataclass
class Layer:
    """One output buffer of one launch, and what the comparison found.

    nodes: [(ONNX node name, op type)] of the launch, in the plan's order. tensor: the ONNX
    tensor the buffer holds and node the (name, op type) that produced it, or None with
    `reason` saying why the buffer is not compared. abs_error: max |tritonnx - onnxruntime|;
    rel_error: that over max |onnxruntime| (as `--check`); inf where the values disagree on
    NaN or infinity."""

    launch: int
    kernel: str
    nodes: list[tuple[str, str]]
    buffer: str
    tensor: str | None = None
    node: tuple[str, str] | None = None
    abs_error: float | None = None
    rel_error: float | None = None
    reason: str | None = None

    @property
    def compared(self) -> bool:
        return self.rel_error is not None


@dataclass
class LayerComparison:
    """The result of `compare_layers`: tritonnx's outputs ({output name: numpy array}, as
    `CompiledModel.run` gives them), one Layer per launch output buffer in launch order, the
    first Layer whose relative error exceeds rtol (None when all compared ones match), and
    the buffers that launch reads which no earlier layer verified (intermediates not
    compared; graph inputs and weights are given, so never listed)."""

    rtol: float
    outputs: dict
    layers: list[Layer]
    first: Layer | None = None
    unverified_inputs: list[str] = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return self.first is not None


def _load_source(artifact: Path):
    """The artifact's model.onnx with its weights (external data read too)."""
    import onnx

    path = artifact / "model.onnx"
    if not path.is_file():
        raise ArtifactError(f"{artifact}: no model.onnx, which --check-layers compares against.")
    try:
        return onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError, a missing external data file: an ArtifactError
        raise ArtifactError(f"{path} cannot be read ({type(e).__name__}: {e}).") from None


def reference_values(proto, feeds: dict) -> dict[str, np.ndarray]:
    """{tensor name: onnxruntime's value} of every top-level node output of `proto` (an
    onnx.ModelProto, not modified) and its graph outputs, from one CPU run on `feeds`
    ({graph input name: numpy array}). Outputs are typed from onnx shape inference where it
    knows them; a value that is not a tensor (a sequence) is left out. Raises InputError
    when onnxruntime cannot run the model on these inputs."""
    import onnx
    import onnxruntime as ort

    marked = onnx.ModelProto()
    marked.CopyFrom(proto)
    try:
        inferred = onnx.shape_inference.infer_shapes(marked)
        types = {vi.name: vi for vi in inferred.graph.value_info}
    except Exception:  # noqa: BLE001 - inference is only for the types; onnxruntime infers its own
        types = {}
    have = {o.name for o in marked.graph.output}
    for node in marked.graph.node:
        for name in node.output:
            if name and name not in have:
                have.add(name)
                marked.graph.output.append(types.get(name) or onnx.ValueInfoProto(name=name))
    try:
        if marked.ByteSize() > _PROTOBUF_LIMIT:  # no single protobuf: by path, with external data
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / "marked.onnx")
                onnx.save(marked, path, save_as_external_data=True, location="marked.onnx.data")
                sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        else:
            sess = ort.InferenceSession(marked.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        values = sess.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a model or input it refuses
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"onnxruntime cannot compute the reference values: {first}") from None
    return {n: v for n, v in zip(names, values) if isinstance(v, np.ndarray)}


def _prepared_nodes(proto) -> tuple[list[tuple[str, Any]], Any]:
    """([(the importer's name of the node, its NodeProto)], the prepared ModelProto): the
    graph as the importer read it (`tritonnx.importers.onnx.prepare`)."""
    from tritonnx.importers.onnx import _node_name, prepare

    prepared = prepare(proto, checked=True)
    return [(_node_name(node, i), node) for i, node in enumerate(prepared.graph.node)], prepared


def _errors(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max abs error, relative error) as `--check` computes them; equal infinities and
    NaN against NaN count as equal, any other non-finite difference as inf."""
    if got.size == 0:
        return 0.0, 0.0
    g = np.asarray(got).astype(np.float64)
    r = np.asarray(ref).astype(np.float64)
    d = np.abs(g - r)
    d[(g == r) | (np.isnan(g) & np.isnan(r))] = 0.0
    diff = float(d.max())
    if not np.isfinite(diff):
        return float("inf"), float("inf")
    finite = np.abs(r[np.isfinite(r)])
    scale = float(finite.max()) if finite.size else 0.0
    return diff, diff / max(scale, 1e-30)


def _comparable(got: np.ndarray, ref: np.ndarray) -> str | None:
    """Why `got` cannot stand for `ref`, or None when it can."""
    if list(got.shape) != list(ref.shape):
        return f"buffer shape {list(got.shape)}, tensor shape {list(ref.shape)}"
    kinds = {got.dtype.kind, ref.dtype.kind}
    floats = {"f", "V"}  # bfloat16 is ml_dtypes' ('V')
    if not (kinds <= floats or got.dtype == ref.dtype):
        return f"buffer dtype {got.dtype}, tensor dtype {ref.dtype}"
    return None


def compare_layers(model, feeds: dict, rtol: float = 1e-4) -> LayerComparison:
    """Runs `model` (a `tritonnx.runtime.CompiledModel`) launch by launch on `feeds`
    ({input name: numpy array} of the model's input shapes and dtypes) and compares each
    launch's output buffers with onnxruntime's value of the ONNX tensor each holds.

    The tensor of a buffer: among the outputs of the launch's nodes, the one that leaves
    the fused group (read by a node outside it, or a graph output) and has the buffer's
    shape; a buffer with no such tensor, several, no reference value, or another shape or
    dtype kind is not compared (`Layer.reason`): only values of the same meaning are.
    Layers are in launch order; the first whose relative error exceeds `rtol` is
    `first`. Returns a LayerComparison. Raises InputError for a wrong input (as
    `CompiledModel.run`) or when onnxruntime cannot run the model, ArtifactError when the
    artifact has no readable model.onnx."""
    result, steps = model.run_layerwise(feeds)
    proto = _load_source(model.path)
    reference = reference_values(proto, feeds)
    named, prepared = _prepared_nodes(proto)
    by_name = dict(named)
    graph_outputs = {o.name for o in prepared.graph.output}
    readers: dict[str, set[str]] = {}
    for name, node in named:
        for t in node.input:
            readers.setdefault(t, set()).add(name)
    plan, _ = model.plan_for({k: list(np.shape(v)) for k, v in feeds.items()})
    kinds = {b["name"]: b["kind"] for b in plan["buffers"]}

    layers: list[Layer] = []
    verified: dict[str, bool] = {}  # intermediate buffer -> whether its last writer matched
    comparison = LayerComparison(rtol, result, layers)
    for step in steps:
        group = set(step["nodes"])
        nodes = [(n, by_name[n].op_type if n in by_name else "?") for n in step["nodes"]]
        leaving = [
            (t, n)
            for n in step["nodes"]
            if n in by_name
            for t in by_name[n].output
            if t and (t in graph_outputs or readers.get(t, set()) - group)
        ]
        launch = plan["launches"][step["launch"]]
        for buffer, got in step["outputs"].items():
            layer = Layer(step["launch"], step["kernel"], nodes, buffer)
            fits = [(t, n) for t, n in leaving if t in reference and _comparable(got, reference[t]) is None]
            if len(fits) == 1:
                layer.tensor, producer = fits[0]
                layer.node = (producer, by_name[producer].op_type)
                layer.abs_error, layer.rel_error = _errors(got, reference[layer.tensor])
            elif fits:
                layer.reason = "several tensors fit: " + ", ".join(t for t, _ in fits)
            elif not any(n in by_name for n in step["nodes"]):
                layer.reason = "its nodes are not in the ONNX graph"
            elif not leaving:
                layer.reason = "no tensor of its nodes leaves the kernel"
            else:
                t, _ = leaving[0]
                why = _comparable(got, reference[t]) if t in reference else "no onnxruntime value"
                layer.reason = f"{t}: {why}" if len(leaving) == 1 else f"no tensor of {len(leaving)} fits"
            layers.append(layer)
            verified[buffer] = layer.compared and layer.rel_error is not None and layer.rel_error <= rtol
            if comparison.first is None and layer.rel_error is not None and layer.rel_error > rtol:
                comparison.first = layer
                outs = set(step["outputs"])
                comparison.unverified_inputs = [
                    b
                    for b in dict.fromkeys(launch["buffers"])
                    if b not in outs and kinds.get(b) in ("intermediate", "output") and not verified.get(b, False)
                ]
    return comparison


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def format_layers(comparison: LayerComparison, width: int = 80) -> list[str]:
    """The comparison as lines of at most `width` characters: one entry per launch output
    (`#launch ok|FAIL|--  abs .. rel .. tensor <- nodes (op types) [kernel]`, wrapped with
    an indent where it is longer), then the verdict."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="      ", break_on_hyphens=False)
    layers = comparison.layers
    compared = [la for la in layers if la.compared]
    lines = [f"layers against onnxruntime (rtol {comparison.rtol:g}): {len(compared)} of {len(layers)} compared"]
    for la in layers:
        nodes = ", ".join(f"{n} ({op})" for n, op in la.nodes) or "no nodes"
        if la.compared:
            assert la.abs_error is not None and la.rel_error is not None
            mark = "ok" if la.rel_error <= comparison.rtol else "FAIL"
            text = (
                f"#{la.launch:<3} {mark:<4} abs {_fmt(la.abs_error)} rel {_fmt(la.rel_error)}  "
                f"{la.tensor} <- {nodes} [{la.kernel}]"
            )
        else:
            text = f"#{la.launch:<3} --   not compared ({la.reason}): {la.buffer} <- {nodes} [{la.kernel}]"
        lines += wrap.wrap(text)
    first = comparison.first
    if first is None:
        skipped = len(layers) - len(compared)
        text = f"all {len(compared)} compared layers match onnxruntime" + (
            f" ({skipped} not compared)" if skipped else ""
        )
        return lines + wrap.wrap(text)
    assert first.node is not None and first.rel_error is not None
    others = [f"{n} ({op})" for n, op in first.nodes if n != first.node[0]]
    text = (
        f"first mismatching layer: launch #{first.launch} ({first.kernel}): tensor {first.tensor} "
        f"from node {first.node[0]} ({first.node[1]})"
        + (f", fused with {', '.join(others)}" if others else "")
        + f"; relative error {_fmt(first.rel_error)} exceeds {comparison.rtol:g}"
    )
    if comparison.unverified_inputs:
        text += (
            "; its inputs " + ", ".join(comparison.unverified_inputs) + " were not compared, so the divergence may "
            "start earlier"
        )
    else:
        text += "; its inputs matched (every earlier layer it reads passed)"
    return lines + wrap.wrap(text)
