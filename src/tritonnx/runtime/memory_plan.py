"""Memory plan: places every intermediate buffer of a launch plan at an offset in one arena.

A buffer lives from the launch that writes it to the last launch that reads it (both
inclusive: a kernel reads its inputs while it writes its output). Two steps:

1. In place: when a launch's input is read only at the output's own index (role "e",
   recorded by the `choose-blocks` pass), is an intermediate that dies at that launch and has the
   output's shape and size in bytes, the output takes the input's storage; their lifetimes
   join. Of a multi-output launch only the last output, stored after every load, may.
2. Greedy by size, as TFLite's arena planner does: storage blocks in decreasing size, each
   at the lowest offset where it overlaps no already placed block that is alive at the
   same time (best fit among the gaps, else on top).

Graph inputs, weights and graph outputs are not in the arena: the caller owns inputs and
outputs, weights stay resident.

Figures (bytes): `arena_bytes` (the planned peak), `liveness_bytes` (the largest sum of
sizes alive at any one launch: no placement can do better), `no_reuse_bytes` (every
intermediate in its own allocation).
"""

from __future__ import annotations

import math

import numpy as np

ALIGNMENT = 256  # bytes; what cudaMalloc guarantees, and more than any vector load needs


def nbytes(buffer: dict) -> int:
    """Size of a plan buffer ({"shape", "dtype"}) in bytes."""
    dtype = "uint16" if buffer["dtype"] == "bfloat16" else buffer["dtype"]
    return math.prod(buffer["shape"]) * np.dtype(dtype).itemsize


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def lifetimes(plan: dict) -> dict[str, list[int]]:
    """{intermediate buffer: [first launch, last launch]} over the plan's launches."""
    kinds = {b["name"]: b["kind"] for b in plan["buffers"]}
    live: dict[str, list[int]] = {}
    for i, launch in enumerate(plan["launches"]):
        for name in launch["buffers"]:
            if kinds[name] == "intermediate":
                span = live.setdefault(name, [i, i])
                span[1] = i
    return live


def plan_memory(plan: dict, in_place: bool = True) -> dict:
    """The memory plan of a launch plan (see the module docstring).

    Returns {"alignment", "arena_bytes", "liveness_bytes", "no_reuse_bytes",
    "offsets": {buffer: byte offset}, "in_place": [[output, input], ...]}.
    """
    sizes = {b["name"]: nbytes(b) for b in plan["buffers"]}
    shapes = {b["name"]: list(b["shape"]) for b in plan["buffers"]}
    live = lifetimes(plan)
    storage = {name: name for name in live}  # buffer -> the buffer whose storage it uses
    span = {name: list(s) for name, s in live.items()}  # storage -> joint lifetime
    shared = []
    if in_place:
        for i, launch in enumerate(plan["launches"]):
            out = launch["buffers"][-1]
            if out not in live:
                continue
            roles = launch.get("roles", [])
            for name, role in zip(launch["buffers"][:-1], roles):
                if (
                    role == "e"
                    and name in live
                    and live[name][1] == i
                    and sizes[name] == sizes[out]
                    and shapes[name] == shapes[out]
                    and launch["buffers"].count(name) == 1
                    and storage[out] == out
                ):
                    root = storage[name]
                    if span[root][1] != i:
                        continue  # another buffer sharing that storage is still alive
                    storage[out] = root
                    span[root][1] = live[out][1]
                    del span[out]
                    shared.append([out, name])
                    break
    # greedy by size
    placed: list[tuple[int, int, list[int]]] = []  # (offset, size, span)
    offsets_of_root: dict[str, int] = {}
    for root in sorted(span, key=lambda r: (-sizes[r], span[r][0])):
        size, (lo, hi) = _align(sizes[root]), span[root]
        busy = sorted((off, sz) for off, sz, (a, b) in placed if a <= hi and lo <= b)
        best, best_gap, cursor = None, None, 0
        for off, sz in busy:
            gap = off - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, off + sz)
        offset = best if best is not None else cursor
        placed.append((offset, size, [lo, hi]))
        offsets_of_root[root] = offset
    arena = max((off + sz for off, sz, _ in placed), default=0)
    steps = len(plan["launches"])
    alive = [0] * steps
    for root, (lo, hi) in span.items():
        for t in range(lo, hi + 1):
            alive[t] += sizes[root]
    return {
        "alignment": ALIGNMENT,
        "arena_bytes": arena,
        "liveness_bytes": max(alive, default=0),
        "no_reuse_bytes": sum(sizes[n] for n in live),
        "offsets": {name: offsets_of_root[storage[name]] for name in live},
        "in_place": shared,
    }
