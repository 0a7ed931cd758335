"""Storing a kernel's outputs: each at the template's lanes, or, in a multi-output kernel,
an output that reads an earlier one through unit-step Slices over a window of its index space."""

from __future__ import annotations

from mlir import ir

from tritonnx.dialects.builders import attrs_of, producer, shape_of
from tritonnx.dialects.tile import delinearize, linearize


def _reindex(b, idx, idx_shape, shape):
    """`idx` (indices over `idx_shape`, or None: over `shape` already) as indices over
    `shape`, a reshape of it: the same linear positions."""
    if idx_shape is None or list(idx_shape) == list(shape):
        return idx
    lin = linearize(b, idx, list(idx_shape))
    return delinearize(b, lin, list(shape)) if lin is not None else [None] * len(shape)


def _out_mask_and_store(b, em, out_value, out_buf, idx, mask, idx_shape=None):
    """Evaluates one output of the kernel at `idx` (indices over `idx_shape`, the anchor's
    result shape, when reshapes lie between the anchor and the output) and stores it.
    Returns the stored tile, in the compute type."""
    idx = _reindex(b, idx, idx_shape, shape_of(out_value))
    val = em(out_value, idx, mask)
    offs = linearize(b, idx, shape_of(out_value))
    offs = b.broadcast(offs, em.shape) if offs is not None else b.const(0, em.shape, b.idx)
    want = ir.RankedTensorType(out_buf.type).element_type
    b.store(out_buf, offs, b.convert(val, want), b.broadcast(mask, em.shape))
    return val


def store_outputs(b, em, args, idx, mask, idx_shape=None):
    """Stores every output of the kernel (`args["outs"]`: (value, buffer) pairs in result
    order) at the lanes `idx` over `idx_shape`. In a multi-output kernel (fuse's multi-output
    rule) a later output reads an earlier one at its own index, or through unit-step Slices:
    then it covers a window of the earlier one's index space and is stored where the lanes
    fall inside it. Either way each lane reads what it computed, so an output's tile is
    reused, not recomputed."""
    outs = args["outs"]
    windows: dict = {}  # output position -> (the output whose index space it is in, offsets)
    for i, (value, buf) in enumerate(outs):
        window = _window(value, [v for v, _ in outs[:i]], windows) if i else None
        windows[i] = window
        if window is None:
            val = _out_mask_and_store(b, em, value, buf, idx, mask, idx_shape)
        else:
            base, starts = window
            base_idx = _reindex(b, idx, idx_shape, shape_of(base))
            own, inside = [], []
            for j, (t, s0, n) in enumerate(zip(base_idx, starts, shape_of(value))):
                if s0 == 0 and n == shape_of(base)[j]:
                    own.append(t)
                    continue
                own.append(b.binary("sub", t, s0))
                inside += [b.cmp("ge", t, s0), b.cmp("lt", t, s0 + n)]
            val = _out_mask_and_store(b, em, value, buf, own, b.and_(mask, *inside) if inside else mask)
        if len(outs) > 1:
            em.known[value] = val


def _window(value: ir.Value, earlier: list[ir.Value], windows: dict) -> tuple[ir.Value, list[int]] | None:
    """(the output whose index space `value`'s is in, the offsets of `value`'s in it) when
    `value` reads an earlier output of its kernel through unit-step Slices, or reads one
    that is itself a window (`windows`: by position in `earlier`); None when it reads them
    at its own index."""

    def found(w, starts):
        j = next(k for k, e in enumerate(earlier) if w == e)
        if windows.get(j) is None:
            return (w, starts) if any(starts) or shape_of(w) != shape_of(value) else None
        base, offsets = windows[j]
        return base, [a + c for a, c in zip(starts, offsets)]

    stack: list[ir.Value] = [value]
    seen: set[ir.Value] = set()
    while stack:
        v = stack.pop()
        op = producer(v)
        if any(v == e for e in earlier):
            window = found(v, [0] * len(shape_of(v)))
            if window is not None:
                return window
            continue
        if op is None or any(v == x for x in seen):
            continue
        seen.add(v)
        if op.name == "tnx.slice":
            starts, w = [0] * len(shape_of(v)), v
            while (p := producer(w)) is not None and p.name == "tnx.slice" and all(w != e for e in earlier):
                starts = [a + c for a, c in zip(starts, attrs_of(p)["starts"])]
                w = p.operands[0]
            if any(w == e for e in earlier):
                return found(w, starts)
        stack.extend(op.operands)
    return None
