"""tritonnx: an ONNX graph compiler built on MLIR that emits fused Triton kernels.

model = tritonnx.compile("model.onnx", "out/")
outputs = model.run({"input": array})
"""

from tritonnx.compiler.driver import compile
from tritonnx.errors import CompileError, ModelLoadError, TritonnxError, UnsupportedModelError
from tritonnx.runtime import CompiledModel

__all__ = ["compile", "CompiledModel", "CompileError", "ModelLoadError", "TritonnxError", "UnsupportedModelError"]
