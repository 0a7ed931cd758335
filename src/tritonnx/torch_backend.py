"""`torch.compile(model, backend="tritonnx")`: TorchDynamo's captured graphs compiled by tritonnx.

Registered under the name `tritonnx` through torch's backend entry point
(`torch_dynamo_backends` in pyproject.toml), so no import of tritonnx is needed first.
Each graph Dynamo captures is exported to ONNX with torch.onnx's dynamo exporter (which
needs onnxscript), compiled by `tritonnx.compile` for its example inputs' shapes, and run on
torch tensors. A graph tritonnx cannot compile (an op it does not support, an export that
fails) runs eagerly instead, with one warning naming the reason.
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
    """A TorchDynamo backend: returns a callable that runs `gm` (a torch.fx.GraphModule) on
    tensors of `example_inputs`' shapes and dtypes through tritonnx, returning what `gm`
    returns (a tuple or list of tensors), or `gm.forward` itself with a
    TritonnxFallbackWarning when the graph cannot be exported or compiled.
    `compile_options` go to `tritonnx.compile` (torch.compile's `options=`)."""
    import torch

    from tritonnx.compiler.driver import compile as tritonnx_compile

    if not all(isinstance(x, torch.Tensor) for x in example_inputs):
        return _fallback(gm, "an input is not a tensor (a symbolic size or a Python value)")
    weights = _weight_inputs(gm)
    try:
        proto = _export(gm, example_inputs)
        onnx_inputs = [vi.name for vi in proto.graph.input]
        if len(onnx_inputs) != len(example_inputs):
            return _fallback(gm, f"the exported model takes {len(onnx_inputs)} inputs, the graph {len(example_inputs)}")
        constants = {name: x.detach().cpu().numpy() for name, x, w in zip(onnx_inputs, example_inputs, weights) if w}
        model = tritonnx_compile(proto, constants=constants, **compile_options)
    except TritonnxError as e:
        return _fallback(gm, f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - torch.onnx's exporter raises many kinds; say which
        return _fallback(gm, f"the ONNX export failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    fed = [(i, name) for i, (name, w) in enumerate(zip(onnx_inputs, weights)) if not w]

    def run(*args):
        out = model.run({name: args[i].detach().contiguous() for i, name in fed})
        return tuple(out[n] for n in model.output_names)

    run.tritonnx_model = model
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
