"""Passes. Each module holds one pass: a function `(op, pass_) -> None` over the module,
named by its command-line name (`NAME`). `tritonnx.compiler.pipeline` lists them in order
and `tritonnx-opt --pass-pipeline=a,b` runs any of them. A pass reads the compile options
from the compile Session (`current_session().options`), not from arguments."""

from __future__ import annotations

import contextvars

from mlir import ir

from tritonnx.compiler.options import CompileOptions
from tritonnx.dialects.builders import WeightStore


class Session:
    """What one compilation's passes share besides the IR: its options (a default
    CompileOptions outside `compile`, e.g. in tritonnx-opt), the weights behind its
    dense_resource attributes and the Triton sources lower-to-triton printed."""

    def __init__(self, weights: WeightStore | None = None, options: CompileOptions | None = None):
        self.weights = weights or WeightStore()
        self.options = options or CompileOptions()
        self.sources: dict[str, str] = {}


_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar("session", default=None)


def current_session() -> Session:
    """The Session of the compilation in progress (a fresh one outside `compile`)."""
    session = _session.get()
    if session is None:
        session = Session()
        _session.set(session)
    return session


def use_session(session: Session) -> contextvars.Token:
    """Makes `session` current; pass the token to `_session.reset` to undo."""
    return _session.set(session)


def current_weights() -> WeightStore:
    return current_session().weights


def functions(module: ir.Operation) -> list[ir.Operation]:
    """The `func.func` ops of a module, as generic operations."""
    return [op.operation for op in module.regions[0].blocks[0].operations if op.operation.name == "func.func"]


def ops(block: ir.Block) -> list[ir.Operation]:
    """The ops of a block as generic operations (a snapshot, safe to mutate the block)."""
    return [op.operation for op in block.operations]
