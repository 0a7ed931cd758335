"""Cost model: FLOPs, modeled DRAM bytes and roofline time of every launch of a plan, and
the bounds that judge a plan's memory traffic. Needs no GPU: everything is computed from
the plan (`plan.json`) and the ONNX graph.

Bytes a launch moves through device memory (DRAM):
- its output, written once;
- each input buffer, read once; except that tiles of a dot's data operand (role "a") are
  read again by every column of output blocks (grid axis 1) and tiles of its weights
  (role "b") by every row of output blocks (grid axis 0), unless the operand fits in the
  GPU's L2 cache, in which case the re-reads hit L2 and it counts once.
Roofline time: max(FLOPs / peak FLOP/s, bytes / DRAM bandwidth); the kernel is
compute-bound when the first term is the larger.

Bounds over the ONNX graph (bytes):
- lower: weights + graph inputs + graph outputs, each moved once;
- materialization: lower, plus, for every Conv, ConvTranspose, MatMul, Gemm, pooling,
  reduction and normalization node, the value that leaves it after the chain of
  single-consumer nodes it can fuse with (bias, BatchNormalization, activation, residual
  Add, reshape; a Concat takes it as its part, stored once in place) written once and
  read once by each consumer at the end of that chain;
- unfused: one kernel per ONNX node, each reading all its inputs and writing its outputs.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from tritonnx import target as gpu_targets
from tritonnx.runtime.memory_plan import nbytes

MATERIALIZED = {
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
    "GlobalLpPool",
    "ArgMax",
    "ArgMin",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    "LayerNormalization",
    "GroupNormalization",
    "InstanceNormalization",
    "TopK",
    "CumSum",
    "Einsum",
} | {f"Reduce{r}" for r in ("Sum", "Mean", "Max", "Min", "Prod", "L1", "L2", "LogSum", "LogSumExp", "SumSquare")}
NO_KERNEL = {"Constant", "Shape", "Size", "Identity", "Dropout"}  # no data movement at run time


def launch_cost(launch: dict, buffers: dict[str, dict], gpu: str = "H100") -> dict:
    """{"flops", "bytes", "time_s", "bound": "memory"|"compute"} of one launch.

    launch: a plan launch (grid, buffers, roles, flops, precision); buffers: plan buffers
    by name; gpu: a target name or product alias of `tritonnx.target` ("sm_90", "H100").
    Units: FLOPs, bytes, seconds. Raises KeyError for an unknown gpu."""
    spec = gpu_targets.get(gpu)
    grid = list(launch["grid"]) + [1, 1]
    total = 0
    roles = launch.get("roles") or [""] * (len(launch["buffers"]) - 1) + ["out"]
    seen = set()
    for name, role in zip(launch["buffers"], roles):
        if name in seen or role == "check":  # an index check's 16 bytes: written only for a bad index
            continue
        seen.add(name)
        size = nbytes(buffers[name])
        if role == "a" and size > spec.l2_bytes:
            size *= grid[1]
        elif role == "b" and size > spec.l2_bytes:
            size *= grid[0]
        total += size
    if 0 in launch["grid"]:
        total = 0
    flops = launch.get("flops", 0)
    peak = spec.peak_flops(launch.get("precision", "fp32"))
    t_compute, t_memory = flops / peak, total / spec.dram_bytes_s
    return {
        "flops": flops,
        "bytes": total,
        "time_s": max(t_compute, t_memory),
        "bound": "compute" if t_compute > t_memory else "memory",
    }


def _sizes(model: onnx.ModelProto) -> dict[str, int]:
    """Bytes of every value of a shape-inferred model whose shape is static."""
    out = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
            continue
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        out[vi.name] = math.prod(d.dim_value for d in tt.shape.dim) * dtype.itemsize
    for t in model.graph.initializer:
        out[t.name] = math.prod(t.dims) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    return out


def bounds(model: onnx.ModelProto) -> dict:
    """{"lower_bytes", "materialization_bytes", "unfused_bytes", "unfused_kernels"} of a
    shape-inferred model with static shapes (see the module docstring)."""
    g = model.graph
    size = _sizes(model)
    weights = {t.name for t in g.initializer}
    nodes = []
    for node in g.node:  # Constant nodes and nodes of constants only fold into weights
        if all(n in weights for n in node.input if n):
            weights.update(node.output)
        else:
            nodes.append(node)
    inputs = [i.name for i in g.input if i.name not in weights]
    outputs = {o.name for o in g.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in set(node.input):
            if name:
                consumers.setdefault(name, []).append(node)
    used_weights = {n for n in weights if n in consumers or n in outputs}
    lower = (
        sum(size.get(n, 0) for n in used_weights)
        + sum(size.get(n, 0) for n in inputs)
        + sum(size.get(n, 0) for n in outputs)
    )
    materialized = 0
    for node in nodes:
        if node.op_type not in MATERIALIZED:
            continue
        value = node.output[0]
        readers = value
        while True:  # follow the chain of sole consumers that fuse with the node
            users = consumers.get(readers, [])
            if (
                len(users) != 1
                or readers in outputs
                or users[0].op_type in MATERIALIZED
                or users[0].op_type in NO_KERNEL
                or len(users[0].output) != 1
            ):
                break
            readers = users[0].output[0]
            if users[0].op_type != "Concat":  # a Concat's part is stored once, in place
                value = readers
        reads = len(consumers.get(readers, []))
        materialized += size.get(value, 0) * ((0 if readers in outputs else 1) + reads)
    unfused, kernels = 0, 0
    for node in nodes:
        if node.op_type in NO_KERNEL:
            continue
        kernels += 1
        unfused += sum(size.get(n, 0) for n in set(node.input) if n) + sum(size.get(n, 0) for n in node.output if n)
    return {
        "lower_bytes": lower,
        "materialization_bytes": lower + materialized,
        "unfused_bytes": unfused,
        "unfused_kernels": kernels,
    }


def symbolic_totals(plan: dict) -> dict[str, str]:
    """A dynamic plan's figures as expressions over its symbols (sympy's notation): "bytes"
    (every launch's buffers read and written once: the compulsory traffic, without the
    L2 re-reads the numeric figure models), "flops", and "no_reuse_bytes" (intermediate
    buffers without reuse). Units: bytes, FLOPs."""
    import sympy

    from tritonnx.symbolic import parse

    def dim(d) -> sympy.Expr:
        return parse(d) if isinstance(d, str) else sympy.Integer(int(d))

    def size(b: dict) -> sympy.Expr:
        return sympy.Mul(*[dim(d) for d in b["shape"]]) * np.dtype(b["dtype"]).itemsize

    buffers = {b["name"]: b for b in plan["buffers"]}
    traffic, flops = sympy.Integer(0), sympy.Integer(0)
    for launch in plan["launches"]:
        roles = launch.get("roles") or [""] * len(launch["buffers"])
        names = {n for n, r in zip(launch["buffers"], list(roles) + [""] * len(launch["buffers"])) if r != "check"}
        traffic += sum((size(buffers[n]) for n in names), sympy.Integer(0))
        flops += dim(launch.get("flops", 0))
    no_reuse = sum((size(b) for b in plan["buffers"] if b["kind"] == "intermediate"), sympy.Integer(0))
    return {k: str(sympy.expand(v)) for k, v in (("bytes", traffic), ("flops", flops), ("no_reuse_bytes", no_reuse))}


def summarize(plan: dict, gpu: str = "H100") -> dict:
    """Per-launch costs and totals of a plan: {"gpu", "launches": [...], "totals": {...}}.
    Totals: kernels launched, FLOPs, modeled bytes, roofline seconds, the bounds and their
    ratios, and the memory plan's peak against its liveness bound and no reuse. A dynamic
    plan is judged at its size hints (`plan["symbols"]`, in "sizes"), and its figures are
    also given as expressions over the symbols ("expressions", `symbolic_totals`)."""
    sizes = plan.get("symbols") or {}
    expressions = symbolic_totals(plan) if sizes else {}
    if sizes:
        from tritonnx.runtime.dynamic import concretize

        plan = concretize(plan, sizes)
    buffers = {b["name"]: b for b in plan["buffers"]}
    rows = []
    for launch in plan["launches"]:
        c = launch_cost(launch, buffers, gpu)
        rows.append(
            {
                "kernel": launch["kernel"],
                "nodes": launch["nodes"],
                "kind": launch["kind"],
                "grid": launch["grid"],
                "block": launch["block"],
                "num_warps": launch["num_warps"],
                "num_stages": launch["num_stages"],
                **c,
            }
        )
    modeled = sum(r["bytes"] for r in rows)
    as_fp32 = {
        n: ({**b, "dtype": "float32"} if b["dtype"] in ("float16", "bfloat16") else b) for n, b in buffers.items()
    }
    modeled_fp32 = sum(launch_cost(launch, as_fp32, gpu)["bytes"] for launch in plan["launches"])
    totals = {
        "launches": sum(1 for launch in plan["launches"] if 0 not in launch["grid"]),
        "kernels": len({launch["kernel"] for launch in plan["launches"]}),
        "flops": sum(r["flops"] for r in rows),
        "bytes": modeled,
        "time_s": sum(r["time_s"] for r in rows),
        "bytes_at_fp32": modeled_fp32,
    }
    b = plan.get("bounds")
    if b:
        totals.update({k: b[k] for k in ("lower_bytes", "materialization_bytes", "unfused_bytes", "unfused_kernels")})
        totals["bytes_over_lower"] = modeled / b["lower_bytes"] if b["lower_bytes"] else None
        totals["bytes_over_materialization"] = (
            modeled / b["materialization_bytes"] if b["materialization_bytes"] else None
        )
        totals["bytes_over_unfused"] = modeled / b["unfused_bytes"] if b["unfused_bytes"] else None
    m = plan.get("memory")
    if m:
        totals.update(
            {
                "peak_bytes": m["arena_bytes"],
                "liveness_bytes": m["liveness_bytes"],
                "no_reuse_bytes": m["no_reuse_bytes"],
                "peak_over_liveness": m["arena_bytes"] / m["liveness_bytes"] if m["liveness_bytes"] else 1.0,
            }
        )
    notes = list(plan.get("notes", [])) + [n for launch in plan["launches"] for n in launch.get("notes", [])]
    from_sizes = [
        {"kernel": launch["kernel"], "nodes": launch["from_sizes"]}
        for launch in plan["launches"]
        if launch.get("from_sizes")
    ]
    return {
        "gpu": gpu_targets.get(gpu).product,
        "launches": rows,
        "totals": totals,
        "notes": notes,
        "from_sizes": from_sizes,
        "sizes": sizes,
        "expressions": expressions,
    }
