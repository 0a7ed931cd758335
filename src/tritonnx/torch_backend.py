"""`torch.compile(model, backend="tritonnx")`: TorchDynamo's captured graphs compiled by tritonnx.

Registered under the name `tritonnx` through torch's backend entry point
(`torch_dynamo_backends` in pyproject.toml), so no import of tritonnx is needed first.
Each graph Dynamo captures is exported to ONNX with torch.onnx's dynamo exporter (which
needs onnxscript), compiled by `tritonnx.compile` for its inputs' shapes, and run on
torch tensors; a dynamic graph is compiled once per set of input sizes it is called with.
A graph tritonnx cannot compile (an op it does not support, an export that fails) runs
eagerly instead, with one warning naming the reason.
"""

from __future__ import annotations

import io
import warnings

from tritonnx.errors import TritonnxError


class TritonnxFallbackWarning(UserWarning):
    """A captured graph runs eagerly: tritonnx could not export or compile it."""


def _export(gm, example_inputs):
    """The ONNX ModelProto of the FX graph `gm` at `example_inputs` (torch.onnx, dynamo exporter)."""
    import onnx
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(gm, tuple(example_inputs), dynamo=True, verbose=False)
    buffer = io.BytesIO()
    program.save(buffer)
    return onnx.load_from_string(buffer.getvalue())


def tritonnx_backend(gm, example_inputs, **compile_options):
    """A TorchDynamo backend: returns a callable that runs `gm` (a torch.fx.GraphModule)
    through tritonnx, returning what `gm` returns (a tuple or list of tensors), or
    `gm.forward` itself with a TritonnxFallbackWarning when the graph cannot be exported or
    compiled. `compile_options` go to `tritonnx.compile` (torch.compile's `options=`).

    A static graph (every input a tensor) is compiled here, for `example_inputs`' shapes
    and dtypes. A dynamic one (`dynamic=True`, or Dynamo's automatic dynamic shapes after a
    second size: the sizes arrive as SymInt inputs) is compiled at each new set of input
    sizes when first called with it, specialized to those sizes (tritonnx's compile cache
    serves a set seen before in another process); a set it cannot compile runs eagerly,
    with the warning once."""
    import torch

    weights = _weight_inputs(gm)
    if all(isinstance(x, torch.Tensor) for x in example_inputs):
        entry = _compile_graph(gm, example_inputs, weights, compile_options)
        if isinstance(entry, str):
            return _fallback(gm, entry)
        run = _runner(*entry)
        run.tritonnx_model = entry[0]
        return run
    specialized: dict = {}

    def run_dynamic(*args):
        key = tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else a for a in args)
        if key not in specialized:
            specialized[key] = _compile_graph(gm, args, weights, compile_options)
            if isinstance(specialized[key], str):
                _fallback(
                    gm, f"at input sizes {[k[0] if isinstance(k, tuple) else k for k in key]}: {specialized[key]}"
                )
        entry = specialized[key]
        return gm.forward(*args) if isinstance(entry, str) else _runner(*entry)(*args)

    run_dynamic.tritonnx_models = specialized  # {input sizes: CompiledModel and its feeds, or why not}
    return run_dynamic


def _compile_graph(gm, args, weights: list[bool], compile_options: dict):
    """(CompiledModel, [(argument position, ONNX input name)] of the inputs it is fed) of
    `gm` exported at `args` (tensors, and the concrete sizes of a dynamic graph, which the
    export specializes on), or the reason it cannot be compiled."""
    import torch

    from tritonnx.compiler.driver import compile as tritonnx_compile

    try:
        proto = _export(gm, args)
    except Exception as e:  # noqa: BLE001 - torch.onnx's exporter raises many kinds; say which
        return f"the ONNX export failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]  # the ONNX inputs, in order
    onnx_inputs = [vi.name for vi in proto.graph.input]
    if len(onnx_inputs) != len(tensors):
        return f"the exported model takes {len(onnx_inputs)} inputs, the graph {len(tensors)} tensors"
    constants = {name: args[i].detach().cpu().numpy() for name, i in zip(onnx_inputs, tensors) if weights[i]}
    try:
        model = tritonnx_compile(proto, constants=constants, **compile_options)
    except TritonnxError as e:
        return f"{type(e).__name__}: {e}"
    return model, [(i, name) for name, i in zip(onnx_inputs, tensors) if not weights[i]]


def _runner(model, fed: list):
    def run(*args):
        out = model.run({name: args[i].detach().contiguous() for i, name in fed})
        return tuple(out[n] for n in model.output_names)

    return run


def _weight_inputs(gm) -> list[bool]:
    """Per placeholder of `gm`: is it a module's parameter or buffer (which Dynamo lifts to
    graph inputs)? Those are compiled in as constants (weights), as they are for an ONNX
    export of the module; Dynamo's guards recompile when a module is replaced, but an
    in-place change of a weight after compiling is not seen (inference, not training)."""
    import torch

    out = []
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        arg = node.meta.get("grapharg")
        source = arg.source.name if arg is not None and getattr(arg, "source", None) is not None else ""
        source = source() if callable(source) else source
        value = node.meta.get("example_value")
        out.append("._parameters[" in source or "._buffers[" in source or isinstance(value, torch.nn.Parameter))
    return out


def _fallback(gm, reason: str):
    warnings.warn(f"tritonnx runs this captured graph eagerly: {reason}", TritonnxFallbackWarning, stacklevel=3)
    return gm.forward
