"""Passes. Each module holds one pass: a function `(op, pass_) -> None` over the module,
registered here by its command-line name. `tritonnx-opt --pass-pipeline=a,b` runs any of
them, and `tritonnx.compiler.pipeline` lists them in order."""
from __future__ import annotations

import contextvars

from mlir import ir

from tritonnx.dialects.builders import WeightStore

class Session:
    """What one compilation's passes share besides the IR: the weights behind its
    dense_resource attributes and the Triton sources lower-to-triton printed."""

    def __init__(self, weights: WeightStore | None = None):
        self.weights = weights or WeightStore()
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


def registry() -> dict:
    """`{pass name: (run function, one-line description)}` for every tritonnx pass."""
    from tritonnx.passes import (autocast, canonicalize, fuse, lower_to_tile, lower_to_triton, match_attention,
                                 merge_siblings, multi_output, outline, partition, split_k, tile, verify)
    return {m.NAME: (m.run, m.__doc__.strip().splitlines()[0])
            for m in (verify, canonicalize, autocast, split_k, merge_siblings, match_attention, partition,
                      multi_output, fuse, outline, tile, lower_to_tile, lower_to_triton)}
