"""tritonnx as an ONNX backend (`onnx.backend.base.Backend`).

    import tritonnx.conformance.onnx_backend as backend
    rep = backend.prepare(model)            # compiles once, into a temporary directory
    (y,) = rep.run([x])                     # outputs in graph-output order
    y = backend.run_model(model, [x])[0]

This is the interface ONNX's conformance suite (`onnx.backend.test`) drives. The kernels
run where `tritonnx.runtime` puts them: on a CUDA GPU when torch sees one, otherwise on
the CPU through Triton's interpreter (the device argument only checks that the device is
available; it does not move the computation).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _runtime_inputs(model: onnx.ModelProto) -> list[str]:
    """Names of the graph inputs that are not initializers, in graph order."""
    weights = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in weights]


class TritonnxRep(BackendRep):
    """A compiled model, ready to run repeatedly. Owns the temporary artifact directory,
    which is removed when the rep is garbage collected (or on `close()`).

    Inputs that set shapes (a Reshape's shape, a Slice's starts, a Resize's scales: see
    `tritonnx.importers.onnx.parameter_inputs`) cannot be run-time inputs of a static-shape
    compile. For such a model the rep compiles at the first `run`, specialized on those
    inputs' values, and again for each new set of values (as a JIT specializes)."""

    def __init__(
        self,
        model: onnx.ModelProto,
        compiled,
        workdir: tempfile.TemporaryDirectory,
        parameters: tuple[str, ...] = (),
        compile_kwargs: dict | None = None,
    ):
        self.compiled = compiled
        self._workdir = workdir
        self._model = model
        self._parameters = parameters
        self._kwargs = compile_kwargs or {}
        self._specialized: dict[tuple, Any] = {}
        self.input_names = _runtime_inputs(model)
        self.output_names = [o.name for o in model.graph.output]

    def _compiled_for(self, named: dict):
        """The compiled model for these values of the parameter inputs."""
        if not self._parameters:
            return self.compiled
        import tritonnx

        missing = [n for n in self._parameters if n not in named]
        if missing:
            raise ValueError(f"missing inputs {missing}: the model's shapes depend on them.")
        values = {n: np.asarray(named[n]) for n in self._parameters}
        key = tuple((n, v.dtype.str, v.shape, v.tobytes()) for n, v in sorted(values.items()))
        if key not in self._specialized:
            out = Path(self._workdir.name) / f"model-{len(self._specialized)}"
            self._specialized[key] = tritonnx.compile(self._model, out, constants=values, **self._kwargs)
        self.compiled = self._specialized[key]
        return self.compiled

    def _feeds(self, inputs: Any) -> dict:
        """Maps a list (graph inputs in order), a dict (by name) or a single array to the
        compiled model's inputs."""
        if isinstance(inputs, dict):
            named = dict(inputs)
        else:
            if isinstance(inputs, np.ndarray) or np.isscalar(inputs):
                inputs = [inputs]
            inputs = list(inputs)
            if len(inputs) > len(self.input_names):
                raise ValueError(
                    f"the model takes {len(self.input_names)} inputs "
                    f"({', '.join(self.input_names)}); got {len(inputs)}."
                )
            named = dict(zip(self.input_names, inputs))
        wanted = self._compiled_for(named).input_names
        missing = [n for n in wanted if n not in named]
        if missing:
            raise ValueError(f"missing inputs {missing}; the compiled model takes {wanted}.")
        # inputs the compiled model does not take (unused ones) are dropped
        return {n: _contiguous(named[n]) for n in wanted}

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Runs the model; returns its outputs as a namedtuple in graph-output order (also
        indexable by output name)."""
        del kwargs
        feeds = self._feeds(inputs)  # first: it picks (or compiles) the specialization
        out = self.compiled.run(feeds)
        values = [out[n] for n in self.output_names]
        return namedtupledict("Outputs", self.output_names)(*values)

    def close(self) -> None:
        """Removes the artifact directory now."""
        self._workdir.cleanup()


def _contiguous(value):
    """numpy arrays (and scalars) as C-contiguous arrays of the same shape, 0-d included
    (torch.from_numpy rejects negative strides); torch tensors unchanged."""
    if isinstance(value, list | tuple):  # a sequence input
        return [_contiguous(v) for v in value]
    if isinstance(value, np.ndarray) or np.isscalar(value):
        value = np.asarray(value)
        return value if value.flags.c_contiguous else value.copy(order="C")
    return value


class TritonnxBackend(Backend):
    """The tritonnx ONNX backend: `prepare` compiles with `tritonnx.compile`."""

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs: Any) -> TritonnxRep:
        """Compiles `model` (ModelProto, path or bytes) into a temporary directory.

        Keyword arguments are passed on to `tritonnx.compile` (e.g. override_initializers).
        Raises ValueError for an unavailable device and tritonnx's errors
        (ModelLoadError, UnsupportedModelError, CompileError) for the model.
        """
        import tritonnx
        from tritonnx.importers.onnx import expand_functions, load, parameter_inputs

        if not cls.supports_device(device):
            raise ValueError(f"device {device!r} is not available to tritonnx.")
        proto = load(model)
        parameters = tuple(sorted(parameter_inputs(expand_functions(proto))))
        workdir = tempfile.TemporaryDirectory(prefix="tritonnx-backend-")
        if parameters:  # compiled at the first run, on those inputs' values
            return TritonnxRep(proto, None, workdir, parameters, kwargs)
        try:
            compiled = tritonnx.compile(proto, Path(workdir.name) / "model", **kwargs)
        except BaseException:
            workdir.cleanup()
            raise
        return TritonnxRep(proto, compiled, workdir)

    @classmethod
    def run_model(cls, model, inputs: Any, device: str = "CPU", **kwargs: Any) -> tuple[Any, ...]:
        """Compiles and runs once."""
        rep = cls.prepare(model, device, **kwargs)
        try:
            return rep.run(inputs)
        finally:
            rep.close()

    @classmethod
    def run_node(
        cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", outputs_info=None, **kwargs: Any
    ) -> tuple[Any, ...]:
        """Runs a single node by wrapping it in a one-node model (opset 17 unless
        `opset_version` is given); needs `outputs_info` [(dtype, shape)] per output."""
        if outputs_info is None:
            raise ValueError("run_node needs outputs_info: tritonnx compiles static shapes only.")
        opset = kwargs.pop("opset_version", 17)
        arrays = [np.asarray(a) for a in (inputs.values() if isinstance(inputs, dict) else inputs)]
        names = list(inputs) if isinstance(inputs, dict) else list(node.input)[: len(arrays)]
        graph_inputs = [
            onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays)
        ]
        graph_outputs = [
            onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t)), s)
            for n, (t, s) in zip(node.output, outputs_info)
        ]
        graph = onnx.helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        return cls.run_model(model, arrays, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """CPU always (Triton's interpreter); CUDA when torch sees a GPU."""
        try:
            kind = Device(device).type
        except (AttributeError, ValueError):
            return False
        if kind == DeviceType.CPU:
            return True
        return kind == DeviceType.CUDA and _cuda_available()


prepare = TritonnxBackend.prepare
run_model = TritonnxBackend.run_model
run_node = TritonnxBackend.run_node
supports_device = TritonnxBackend.supports_device
