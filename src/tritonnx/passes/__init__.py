"""Passes. Each module holds one pass: a function `(op, pass_) -> None` over the module,
registered here by its command-line name. `tritonnx-opt --pass-pipeline=a,b` runs any of
them, and `tritonnx.compiler.pipeline` lists them in order."""
from __future__ import annotations

import contextvars

from mlir import ir

from tritonnx.dialects.builders import WeightStore

_weights: contextvars.ContextVar[WeightStore | None] = contextvars.ContextVar("weights", default=None)


def current_weights() -> WeightStore:
    """The WeightStore of the compilation in progress (a fresh one outside `compile`)."""
    store = _weights.get()
    if store is None:
        store = WeightStore()
        _weights.set(store)
    return store


def use_weights(store: WeightStore):
    """Makes `store` the current WeightStore; returns a token for `_weights.reset`."""
    return _weights.set(store)


def functions(module: ir.Operation) -> list[ir.Operation]:
    """The `func.func` ops of a module, as generic operations."""
    return [op.operation for op in module.regions[0].blocks[0].operations if op.operation.name == "func.func"]


def ops(block: ir.Block) -> list[ir.Operation]:
    """The ops of a block as generic operations (a snapshot, safe to mutate the block)."""
    return [op.operation for op in block.operations]


def registry() -> dict:
    """`{pass name: (run function, one-line description)}` for every tritonnx pass."""
    from tritonnx.passes import canonicalize, fuse, lower_to_tile, lower_to_triton, outline, tile
    return {m.NAME: (m.run, m.__doc__.strip().splitlines()[0])
            for m in (canonicalize, fuse, outline, tile, lower_to_tile, lower_to_triton)}
