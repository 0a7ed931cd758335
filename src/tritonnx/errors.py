"""Errors a user can act on. Each message is one paragraph naming what was wrong."""

from __future__ import annotations


class TritonnxError(Exception):
    """Base class for tritonnx's user-facing errors."""


class ModelLoadError(TritonnxError, ValueError):
    """The file is not a readable, valid ONNX model."""


class UnsupportedModelError(TritonnxError, ValueError):
    """The model uses ops or features tritonnx does not handle. `nodes` lists
    `(node name, op type, opset)` for every unsupported node."""

    def __init__(self, message: str, nodes: list[tuple[str, str, int]] | None = None):
        super().__init__(message)
        self.nodes = nodes or []


class InvalidModelError(TritonnxError, ValueError):
    """The model breaks the ONNX spec (operand shapes, dtypes or attributes of a node that do
    not fit together: a Reshape whose element count changes, a Conv whose channels do not
    match its weight, an out-of-range constant index), as onnxruntime would refuse it. The
    message names the node, its op type and opset."""


class CompileError(TritonnxError):
    """A pass could not process the model."""


class InputError(TritonnxError, ValueError):
    """A run-time input (or an option naming one) is wrong: the message names the input and
    what was expected."""


class ArtifactError(TritonnxError, ValueError):
    """An artifact directory is not one tritonnx can load: no plan.json, an unknown format
    version, a plan that does not validate, or a file whose SHA-256 does not match the plan."""


class OutputPathError(TritonnxError, ValueError):
    """An output path holds something tritonnx did not create (a file, or a non-empty
    directory that is not a tritonnx artifact); it is left untouched."""


class IndexOutOfRangeError(TritonnxError, IndexError):
    """An index from the data (a Gather's token ids) is outside its axis at run time: the
    message names the node, its op type, the index and the valid range [-n, n-1]."""
