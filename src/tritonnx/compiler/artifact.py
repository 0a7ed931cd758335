"""Writes an artifact directory from the lowered module (the format: `tritonnx.runtime.format`):

plan.json          the format marker and version, the SHA-256 of every other file
                   (`files`), inputs, outputs, buffers and `launches` (kernel, grid,
                   buffers, scalars, num_warps, num_stages, ONNX nodes) in launch order
kernels/*.py       one @triton.jit kernel per distinct fusion group
kernels/*.<target>.cubin   ahead-of-time GPU binaries, when targets were given
weights.safetensors   written by safetensors from the arrays' memory (no copy: a weight
                   mapped from an external data file is streamed from it)
model.onnx         the source model, for `tritonnx run --check`; with external data, its
                   big weights in model.onnx.data beside it
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import onnx
from mlir import ir
from safetensors.torch import save_file

from tritonnx.compiler.aot import compile_kernels
from tritonnx.dialects.builders import np_dtype, type_shape
from tritonnx.errors import UnsupportedModelError
from tritonnx.importers import external
from tritonnx.passes import Session, functions, ops
from tritonnx.runtime import format as artifact_format
from tritonnx.runtime.memory_plan import plan_memory
from tritonnx.symbolic import is_symbolic, make, module_hints, to_python

DOT_KINDS = ("conv", "conv_transpose", "gemm", "mat_mul", "attention")


def _size(d) -> int | str:
    """A size in the plan: an int, or the expression of a dynamic one (`symbolic.to_python`)."""
    return to_python(d) if is_symbolic(d) else int(d)


def _tensor(t: ir.Type) -> dict:
    rt = ir.RankedTensorType(t)
    return {"shape": [_size(d) for d in type_shape(rt)], "dtype": np.dtype(np_dtype(rt.element_type)).name}


def _grid(kernel: ir.Operation) -> list:
    if "tnx.grid_sizes" in kernel.attributes:  # dynamic: expressions the runtime evaluates
        return [_size_text(ir.StringAttr(g).value) for g in ir.ArrayAttr(kernel.attributes["tnx.grid_sizes"])]
    return list(ir.DenseI64ArrayAttr(kernel.attributes["tnx.grid"]))


def _size_text(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _symbol_args(kernel: ir.Operation) -> list[str]:
    return (
        [ir.StringAttr(a).value for a in ir.ArrayAttr(kernel.attributes["tnx.symbol_args"])]
        if "tnx.symbol_args" in kernel.attributes
        else []
    )


def build_plan(module: ir.Module, session: Session) -> tuple[dict, dict[str, np.ndarray]]:
    """The launch plan of @main and the weights it needs, by buffer name."""
    kernels = {
        ir.StringAttr(f.attributes["sym_name"]).value: f
        for f in functions(module.operation)
        if "tnx.kind" in f.attributes
    }
    main = next(f for f in functions(module.operation) if "tnx.kind" not in f.attributes)
    block = main.regions[0].blocks[0]
    names: dict = {}
    buffers: list[dict] = []
    weights: dict = {}
    launches: list[dict] = []
    checks: list = []
    input_names = [ir.StringAttr(a).value for a in ir.ArrayAttr(main.attributes["tnx.inputs"])]
    output_names = [ir.StringAttr(a).value for a in ir.ArrayAttr(main.attributes["tnx.outputs"])]
    for arg, name in zip(block.arguments, input_names):
        names[arg] = f"in{len(names)}"
        buffers.append({"name": names[arg], "kind": "input", "onnx_name": name, **_tensor(arg.type)})
    for op in ops(block):
        if op.name == "tnx.constant":
            buf = f"w{len(weights)}"
            names[op.results[0]] = buf
            weights[buf] = np.asarray(session.weights.array(op.attributes["value"]), order="C")
            buffers.append({"name": buf, "kind": "weight", **_tensor(op.results[0].type)})
        elif op.name == "tnx.empty" and "tnx.check" in op.attributes:
            buf = f"c{len(checks)}"
            names[op.results[0]] = buf
            buffers.append({"name": buf, "kind": "check", **_tensor(op.results[0].type)})
            checks.append({"buffer": buf, **_check(ir.DictAttr(op.attributes["tnx.check"]))})
        elif op.name == "tnx.empty":
            buf = f"t{len(buffers)}"
            names[op.results[0]] = buf
            buffers.append({"name": buf, "kind": "intermediate", **_tensor(op.results[0].type)})
        elif op.name == "func.call":
            check_names = {c["buffer"] for c in checks}
            sym = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
            k = kernels[sym]
            block_cfg = ir.DictAttr(k.attributes["tnx.block"])
            cost = ir.DictAttr(k.attributes["tnx.cost"])
            launches.append(
                {
                    "kernel": Path(ir.StringAttr(k.attributes["tnx.source"]).value).stem,
                    "grid": _grid(k),
                    "buffers": [names[v] for v in op.operands],
                    "symbols": _symbol_args(k),
                    "index_bits": (
                        ir.IntegerAttr(k.attributes["tnx.index_bits"]).value  # of its index math
                        if "tnx.index_bits" in k.attributes
                        else 32
                    ),
                    "scalars": {},
                    "num_warps": ir.IntegerAttr(k.attributes["tnx.num_warps"]).value,
                    "num_stages": ir.IntegerAttr(k.attributes["tnx.num_stages"]).value,
                    "kind": ir.StringAttr(k.attributes["tnx.kind"]).value,
                    "block": {
                        n: ir.IntegerAttr(block_cfg[n]).value
                        for n in ("BLOCK", "BLOCK_M", "BLOCK_N", "BLOCK_K", "BLOCK_P", "BLOCK_R", "BLOCK_D")
                        if n in block_cfg
                    },
                    "constexprs": _constexprs(k, block_cfg),
                    "candidates": _configs(k),
                    "nodes": [
                        ir.StringAttr(x).value
                        for x in ir.ArrayAttr(
                            op.attributes["tnx.nodes"] if "tnx.nodes" in op.attributes else k.attributes["tnx.nodes"]
                        )
                    ],
                    "notes": [ir.StringAttr(x).value for x in ir.ArrayAttr(op.attributes["tnx.notes"])]
                    if "tnx.notes" in op.attributes
                    else [],
                    # nodes it computes from the dynamic sizes alone (positions, masks)
                    "from_sizes": [ir.StringAttr(x).value for x in ir.ArrayAttr(op.attributes["tnx.from_sizes"])]
                    if "tnx.from_sizes" in op.attributes
                    else [],
                    "flops": _size_text(ir.StringAttr(cost["flops"]).value)
                    if isinstance(cost["flops"], ir.StringAttr)
                    else ir.IntegerAttr(cost["flops"]).value,
                    "precision": (
                        ir.StringAttr(k.attributes["tnx.precision"]).value  # of its dot products
                        if "tnx.precision" in k.attributes
                        and ir.StringAttr(k.attributes["tnx.kind"]).value in DOT_KINDS
                        else "fp32"
                    ),
                    "roles": _roles(cost, [names[v] in check_names for v in op.operands]),
                }
            )
        elif op.name == "func.return":
            for n, v in zip(output_names, op.operands):
                if v not in names:  # a tnx.sizes: sizes computed from the dynamic dimensions alone
                    raise UnsupportedModelError(
                        f"graph output '{n}' is computed from the dynamic sizes alone (a Shape of a dynamic "
                        "input); tritonnx cannot return it yet: compile for fixed sizes with `shapes=` (CLI --shape)."
                    )
            outputs = [{"name": n, "buffer": names[v], **_tensor(v.type)} for n, v in zip(output_names, op.operands)]
    for b in buffers:
        if b["kind"] == "intermediate" and any(o["buffer"] == b["name"] for o in outputs):
            b["kind"] = "output"
    plan = {
        "format": artifact_format.FORMAT,
        "version": artifact_format.VERSION,
        "inputs": [
            {"name": b["onnx_name"], "buffer": b["name"], "shape": b["shape"], "dtype": b["dtype"]}
            for b in buffers
            if b["kind"] == "input"
        ],
        "outputs": outputs,
        "buffers": buffers,
        "launches": launches,
    }
    if checks:  # index checks: buffers the runtime zeroes before a run and reads after it (runtime.checks)
        plan["checks"] = checks
    hints = module_hints(module.operation)
    if hints:  # dynamic sizes: their names, their size hints, and what the plan needs of them
        plan["symbols"] = hints
        plan["guards"] = (
            [ir.StringAttr(g).value.split(": ", 1) for g in ir.ArrayAttr(module.operation.attributes["tnx.guards"])]
            if "tnx.guards" in module.operation.attributes
            else []
        )
    return plan, weights


def _roles(cost: ir.DictAttr, is_check: list[bool]) -> list[str]:
    """A launch's buffer roles: its inputs' (see `tile.cost_attrs`), "check" for each check
    buffer (they follow the inputs), then "out" for each output (a multi-output kernel has
    several)."""
    roles = [ir.StringAttr(r).value for r in ir.ArrayAttr(cost["roles"])]
    return [
        r if i < len(roles) else "check" if chk else "out"
        for i, (r, chk) in enumerate(zip(roles + [""] * len(is_check), is_check))
    ]


def _check(attr: ir.DictAttr) -> dict:
    """A check buffer's entry in plan["checks"] (see `lower_to_tile.destination.check_attr`)."""
    out = {
        "node": ir.StringAttr(attr["node"]).value,
        "op_type": ir.StringAttr(attr["op_type"]).value,
        "axis": ir.IntegerAttr(attr["axis"]).value,
        "size": _size(make(ir.StringAttr(attr["size"]).value)),
    }
    if "sizes" in attr:  # GatherND, ScatterND: one size per axis of the index tuple
        out["sizes"] = [_size(make(ir.StringAttr(s).value)) for s in ir.ArrayAttr(attr["sizes"])]
    return out


def _constexprs(kernel: ir.Operation, block: ir.DictAttr) -> dict[str, int]:
    """{constexpr parameter: value} of a kernel's launch: the block sizes its source takes."""
    names = (
        [ir.StringAttr(n).value for n in ir.ArrayAttr(kernel.attributes["tnx.constexprs"])]
        if "tnx.constexprs" in kernel.attributes
        else []
    )
    return {n: ir.IntegerAttr(block[n]).value for n in names}


def _configs(kernel: ir.Operation) -> list[dict]:
    """The autotune candidates of a kernel (`tnx.configs`, set by lower-to-triton): other
    block sizes, grids, warps and stages for the same source."""
    if "tnx.configs" not in kernel.attributes:
        return []
    name = Path(ir.StringAttr(kernel.attributes["tnx.source"]).value).stem
    out = []
    for c in ir.ArrayAttr(kernel.attributes["tnx.configs"]):
        c = ir.DictAttr(c)
        block = ir.DictAttr(c["block"])
        out.append(
            {
                "kernel": name,
                "grid": [_size_text(ir.StringAttr(g).value) for g in ir.ArrayAttr(c["grid"])],
                "block": {a.name: ir.IntegerAttr(a.attr).value for a in block},
                "constexprs": _constexprs(kernel, block),
                "num_warps": ir.IntegerAttr(c["num_warps"]).value,
                "num_stages": ir.IntegerAttr(c["num_stages"]).value,
            }
        )
    return out


def _signature(launch: dict, plan: dict) -> list[str]:
    """Triton's types of a launch's arguments, in order: its buffers' pointer types, then
    its symbols, scalars of the kernel's index width (`launch["index_bits"]`)."""
    by_name = {b["name"]: b for b in plan["buffers"]}
    codes = {
        "float32": "*fp32",
        "float16": "*fp16",
        "float64": "*fp64",
        "bfloat16": "*bf16",
        "int64": "*i64",
        "int32": "*i32",
        "int16": "*i16",
        "int8": "*i8",
        "bool": "*i1",
        "uint8": "*u8",
        "uint16": "*u16",
        "uint32": "*u32",
        "uint64": "*u64",
    }
    return (
        [codes[by_name[b]["dtype"]] for b in launch["buffers"]]
        + [f"i{launch.get('index_bits', 32)}"] * len(launch.get("symbols", []))
        + ["constexpr"] * len(launch.get("constexprs", {}))
    )


def compile_cubins(kernel_dir: Path, plan: dict, targets, progress=None, workers=None) -> dict:
    """Compiles every distinct kernel to cubin for each target (no GPU needed), on the
    `aot.Workers` pool given or a new one, one job per kernel reported to `progress` (an
    `aot.KernelProgress`). Returns {kernel: {target: file name}}."""
    jobs, seen = [], set()
    for launch in plan["launches"]:
        if launch["kernel"] in seen:
            continue
        seen.add(launch["kernel"])
        jobs.append(
            {
                "file": str(kernel_dir / f"{launch['kernel']}.py"),
                "kernel": launch["kernel"],
                "signature": launch["signature"],
                "constexprs": launch.get("constexprs", {}),
                "num_warps": launch["num_warps"],
                "num_stages": launch["num_stages"],
                "targets": list(targets),
                "divisibility_16": launch["divisibility_16"],
            }
        )
    compile_kernels(jobs, workers=workers, progress=progress)
    return {k: {t: f"{k}.{t}.cubin" for t in targets} for k in seen}


def _save_weights(path: Path, weights: dict, proto: onnx.ModelProto, failed: list) -> None:
    try:
        from tritonnx.runtime import to_torch

        # torch.from_numpy shares the arrays' memory and safetensors >= 0.8 writes from it:
        # a weight mapped from external data streams from its file, never held twice
        save_file({k: to_torch(v).contiguous() for k, v in weights.items()}, str(path / "weights.safetensors"))
        external.save(proto, path / "model.onnx")  # external data: copied into model.onnx.data
    except BaseException as e:  # noqa: BLE001 - re-raised by `write` in the main thread once the cubins are done
        failed.append(e)


def write(
    path: Path,
    module: ir.Module,
    session: Session,
    proto: onnx.ModelProto,
    targets=(),
    progress=None,
    bounds: dict | None = None,
    workers=None,
    notes: list[str] | None = None,
) -> dict:
    """Writes the artifact into directory `path` (which must exist), compiling the kernels
    to cubin for `targets` (reported to `progress`, an `aot.KernelProgress`); `notes`: what
    the importer decided about the model as a whole, for the report (`plan["notes"]`).
    Returns the plan."""
    plan, weights = build_plan(module, session)
    if notes:
        plan["notes"] = list(notes)
    kdir = path / "kernels"
    kdir.mkdir()
    by_symbol = {
        ir.StringAttr(f.attributes["sym_name"]).value: Path(ir.StringAttr(f.attributes["tnx.source"]).value).stem
        for f in functions(module.operation)
        if "tnx.source" in f.attributes
    }
    for sym, text in session.sources.items():
        (kdir / f"{by_symbol[sym]}.py").write_text(text)
    for launch in plan["launches"]:
        launch["signature"] = _signature(launch, plan)
        # what the cubins assume (`runtime.cubin.attrs`) and the runtime guarantees: every pointer
        # 16-byte aligned (arena offsets are multiples of 256, weights and outputs are fresh
        # allocations, a misaligned input is copied before the launches)
        launch["divisibility_16"] = list(range(len(launch["buffers"])))
    # the weights and the model are written while the kernels compile to cubin
    failed: list[BaseException] = []
    saver = threading.Thread(target=_save_weights, args=(path, weights, proto, failed))
    saver.start()
    try:
        if targets:
            cubins = compile_cubins(kdir, plan, targets, progress, workers)
            for launch in plan["launches"]:
                launch["cubins"] = cubins[launch["kernel"]]
    finally:
        saver.join()
    if failed:
        raise failed[0]
    plan["targets"] = list(targets)
    plan["kernels"] = len({launch["kernel"] for launch in plan["launches"]})
    if plan.get("symbols"):  # figures at the size hints; the runtime plans memory per set of sizes
        from tritonnx.runtime.dynamic import concretize

        plan["memory"] = concretize(plan, plan["symbols"])["memory"]
    else:
        plan["memory"] = plan_memory(plan)
    if bounds is not None:
        plan["bounds"] = bounds
    plan["files"] = artifact_format.manifest(path)
    artifact_format.validate(plan, str(path / "plan.json"))  # what the runtime will check
    (path / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan
