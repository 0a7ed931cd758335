"""tritonnx: an ONNX graph compiler built on MLIR that emits fused Triton kernels.

model = tritonnx.compile("model.onnx", "out/")      # a CompiledModel
outputs = model.run({"input": array})                # {output name: array}
model = tritonnx.load("out/")                        # the artifact again, without compiling
sess = tritonnx.InferenceSession("model.onnx")       # onnxruntime's interface

The names are imported when first used, so `import tritonnx` (and `tritonnx --help`)
loads neither MLIR nor torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tritonnx")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = {
    "compile": "tritonnx.compiler.driver",
    "load": "tritonnx.runtime",
    "CompiledModel": "tritonnx.runtime",
    "InferenceSession": "tritonnx.session",
    "NodeArg": "tritonnx.session",
    "CompileError": "tritonnx.errors",
    "ModelLoadError": "tritonnx.errors",
    "TritonnxError": "tritonnx.errors",
    "UnsupportedModelError": "tritonnx.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tritonnx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
