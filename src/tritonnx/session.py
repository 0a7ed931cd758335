"""`tritonnx.InferenceSession`: onnxruntime's session interface over a compiled model.

An onnxruntime script changes only its import:

    import tritonnx as ort                      # was: import onnxruntime as ort
    sess = ort.InferenceSession("model.onnx")
    name = sess.get_inputs()[0].name            # .name, .shape (symbols as str), .type "tensor(float)"
    probs = sess.run(None, {name: x})[0]        # numpy in, a list of numpy arrays out

`CompiledModel` (`tritonnx.runtime`) stays the lower-level object; this class only adapts
its names and return values to onnxruntime's (`onnxruntime.InferenceSession`, whose
`get_inputs`, `get_outputs`, `run`, `get_providers` and `get_modelmeta` it mirrors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tritonnx.errors import InputError

# onnxruntime's type strings: "tensor(" + the ONNX element type's spec name + ")"
_ONNX_TYPE = {
    "float32": "float",
    "float64": "double",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
}
_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider")


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it: `name`; `shape`, a list with an int
    per static dimension and the symbol's name (str) per dynamic one; `type`, as
    "tensor(float)"."""

    name: str
    shape: list = field(hash=False)
    type: str


@dataclass(frozen=True)
class ModelMetadata:
    """onnxruntime's `ModelMetadata`: the model's producer, graph name, domain, description,
    version and `custom_metadata_map` (the ONNX model's `metadata_props`)."""

    producer_name: str
    graph_name: str
    domain: str
    description: str
    version: int
    custom_metadata_map: dict = field(hash=False)


def _args(values, plan_specs: dict) -> list[NodeArg]:
    """NodeArgs of ONNX ValueInfoProtos: dims as onnxruntime reports them (dim_value, else
    dim_param, else None), falling back to the plan's shape where the model has none."""
    out = []
    for vi in values:
        spec = plan_specs[vi.name]
        tensor = vi.type.tensor_type
        if tensor.HasField("shape"):
            shape = [
                d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                for d in tensor.shape.dim
            ]
        else:
            shape = list(spec["shape"])
        out.append(NodeArg(vi.name, shape, f"tensor({_ONNX_TYPE.get(spec['dtype'], spec['dtype'])})"))
    return out


class InferenceSession:
    """A compiled model behind onnxruntime's session interface.

    model: a path to an .onnx file, the model's bytes, an `onnx.ModelProto`, or the directory
        of an artifact written by `tritonnx.compile` (loaded, not recompiled).
    providers: onnxruntime's provider names, kept for scripts that pass them: the kernels
        run on the CUDA device when torch sees one ("CUDAExecutionProvider") and otherwise
        through Triton's CPU interpreter ("CPUExecutionProvider"); `get_providers()` says which.
        An unknown name raises InputError.
    sess_options: accepted and ignored (onnxruntime's SessionOptions have no tritonnx meaning).
    cuda_graphs: on a GPU, capture each set of input sizes into a CUDA graph and replay it
        (default True; see `tritonnx.CompiledModel`), False to launch kernel by kernel.
    compile_options: passed to `tritonnx.compile` (`shapes=`, `precision=`, `targets=`, ...).

    Raises what `tritonnx.compile` raises (UnsupportedModelError naming the node, ...), or
    ArtifactError for a damaged artifact.
    """

    def __init__(
        self, model, sess_options=None, providers=None, provider_options=None, cuda_graphs=True, **compile_options
    ):
        for p in providers or ():
            name = p[0] if isinstance(p, tuple) else p
            if name not in _PROVIDERS:
                raise InputError(f"unknown execution provider {name!r}; tritonnx takes {', '.join(_PROVIDERS)}.")
        if isinstance(model, str | os.PathLike) and (Path(model) / "plan.json").is_file():
            from tritonnx.runtime import open_artifact

            self._model = open_artifact(model)
        else:
            from tritonnx.compiler.driver import compile

            self._model = compile(model, compile_options.pop("output_dir", None), **compile_options)
        self._model.cuda_graphs = cuda_graphs
        self._proto = None

    @property
    def compiled_model(self):
        """The `tritonnx.CompiledModel` underneath (plan, launches, artifact path)."""
        return self._model

    def _onnx(self):
        """The artifact's model.onnx (structure only: weights are not loaded)."""
        if self._proto is None:
            import onnx

            self._proto = onnx.load(str(self._model.path / "model.onnx"), load_external_data=False)
        return self._proto

    def get_inputs(self) -> list[NodeArg]:
        """The run-time inputs (initializers excluded), in the model's order."""
        specs = {i["name"]: i for i in self._model.plan["inputs"]}
        return _args([vi for vi in self._onnx().graph.input if vi.name in specs], specs)

    def get_outputs(self) -> list[NodeArg]:
        """The graph's outputs, in the model's order."""
        specs = {o["name"]: o for o in self._model.plan["outputs"]}
        return _args([vi for vi in self._onnx().graph.output if vi.name in specs], specs)

    def get_providers(self) -> list[str]:
        """["CUDAExecutionProvider"] when the kernels run on the GPU, else ["CPUExecutionProvider"]."""
        return ["CUDAExecutionProvider" if self._model.device == "cuda" else "CPUExecutionProvider"]

    def get_modelmeta(self) -> ModelMetadata:
        """The model's metadata, as onnxruntime's `get_modelmeta()` gives it."""
        m = self._onnx()
        return ModelMetadata(
            m.producer_name,
            m.graph.name,
            m.domain,
            m.doc_string,
            m.model_version,
            {p.key: p.value for p in m.metadata_props},
        )

    def _select(self, output_names, outputs: dict) -> list:
        names = list(output_names) if output_names else self._model.output_names
        unknown = [n for n in names if n not in outputs]
        if unknown:
            raise InputError(f"unknown output names {unknown}; the model's outputs are {self._model.output_names}.")
        return [outputs[n] for n in names]

    def run(self, output_names, input_feed: dict, run_options=None) -> list:
        """The outputs named in `output_names` (None: all, in the model's order) as numpy
        arrays, for `input_feed` ({input name: numpy array}, shapes and dtypes as
        `get_inputs()` gives). Raises InputError naming a wrong input or unknown output."""
        import numpy as np

        from tritonnx.runtime import to_numpy

        outputs = self._model.run({k: np.asarray(v) if not hasattr(v, "dtype") else v for k, v in input_feed.items()})
        return [v if isinstance(v, np.ndarray) else to_numpy(v) for v in self._select(output_names, outputs)]

    def run_with_torch(self, output_names, input_feed: dict) -> list:
        """As `run`, for torch tensors (or any DLPack tensor, taken without a copy through
        `torch.from_dlpack`): tensors on the model's device are used in place; the outputs
        are torch tensors on that device."""
        import torch

        feeds = {k: v if isinstance(v, torch.Tensor) else torch.from_dlpack(v) for k, v in input_feed.items()}
        return self._select(output_names, self._model.run(feeds))
