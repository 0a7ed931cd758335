"""`tritonnx report ARTIFACT`: the cost model's view of a compiled artifact, per kernel and
in total, as a rich table for people or JSON for machines (`tritonnx.compiler.cost`)."""

from __future__ import annotations

import json
from pathlib import Path

from tritonnx import target as gpu_targets
from tritonnx.compiler.cost import summarize
from tritonnx.errors import InputError


def load_plan(artifact: str | Path) -> dict:
    """The validated plan.json of an artifact directory. Raises ArtifactError when there is
    none or it is damaged (`tritonnx.runtime.format.load_plan`)."""
    from tritonnx.runtime.format import load_plan as load

    return load(Path(artifact))


def _si(x: float, unit: str) -> str:
    scales: tuple[tuple[float, str], ...] = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""))
    if unit == "s":
        scales = ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))
    for scale, prefix in scales:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _nodes(nodes: list[str], width: int = 40) -> str:
    text = ", ".join(nodes)
    return text if len(text) <= width else text[: width - 1] + "…"


def render(summary: dict, plan: dict, console=None) -> None:
    """Prints the per-kernel table and the totals with rich."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if Console().is_terminal else 200)
    tiles = "GPU tiles" if plan.get("targets") else "CPU-interpreter tiles (compile with --target for GPU tiles)"
    if summary.get("sizes"):
        tiles += "; dynamic sizes: figures at the size hints " + ", ".join(
            f"{k}={v}" for k, v in summary["sizes"].items()
        )
    table = Table(title=f"kernels, roofline on {summary['gpu']} ({tiles})", show_lines=False)
    for col in ("#", "kernel", "ONNX nodes", "kind", "grid", "block", "warps", "FLOPs", "bytes", "time", "bound"):
        table.add_column(col, justify="right" if col in ("#", "warps", "FLOPs", "bytes", "time") else "left")
    for i, r in enumerate(summary["launches"]):
        block = "x".join(str(v) for v in r["block"].values())
        table.add_row(
            str(i),
            r["kernel"],
            _nodes(r["nodes"]),
            r["kind"],
            "x".join(map(str, r["grid"])),
            block,
            str(r["num_warps"]),
            _si(r["flops"], "FLOP"),
            _si(r["bytes"], "B"),
            _si(r["time_s"], "s"),
            r["bound"],
        )
    console.print(table)
    t = summary["totals"]
    totals = Table(title="totals", show_header=True)
    totals.add_column("figure")
    totals.add_column("value", justify="right")
    totals.add_column("against", justify="right")
    totals.add_row(
        "kernels launched",
        str(t["launches"]),
        f"{t['unfused_kernels']} unfused (one per ONNX node)" if "unfused_kernels" in t else "",
    )
    totals.add_row("FLOPs", _si(t["flops"], "FLOP"), "")
    totals.add_row("roofline time", _si(t["time_s"], "s"), "")
    totals.add_row("modeled DRAM bytes", _si(t["bytes"], "B"), "")
    if t["bytes_at_fp32"] != t["bytes"]:
        totals.add_row(
            "  the same plan in fp32",
            _si(t["bytes_at_fp32"], "B"),
            f"{_si(t['bytes_at_fp32'] - t['bytes'], 'B')} saved",
        )
    if "lower_bytes" in t:
        totals.add_row("  absolute lower bound", _si(t["lower_bytes"], "B"), f"{t['bytes_over_lower']:.2f}x")
        totals.add_row(
            "  materialization bound", _si(t["materialization_bytes"], "B"), f"{t['bytes_over_materialization']:.2f}x"
        )
        totals.add_row("  unfused plan", _si(t["unfused_bytes"], "B"), f"{t['bytes_over_unfused']:.2f}x")
    if "peak_bytes" in t:
        totals.add_row("planned peak memory", _si(t["peak_bytes"], "B"), "")
        totals.add_row("  liveness lower bound", _si(t["liveness_bytes"], "B"), f"{t['peak_over_liveness']:.2f}x")
        totals.add_row(
            "  no reuse",
            _si(t["no_reuse_bytes"], "B"),
            f"{t['peak_bytes'] / t['no_reuse_bytes']:.2f}x" if t["no_reuse_bytes"] else "",
        )
    console.print(totals)
    if summary.get("expressions"):
        e = summary["expressions"]
        exprs = Table(title="dynamic figures as expressions over the symbols", show_header=True)
        exprs.add_column("figure")
        exprs.add_column("expression")
        exprs.add_row("FLOPs", e["flops"])
        exprs.add_row("DRAM bytes (each buffer once a launch)", e["bytes"])
        exprs.add_row("intermediate bytes, no reuse", e["no_reuse_bytes"])
        console.print(exprs)
    for k in summary.get("from_sizes", []):
        console.print(
            f"computed from the dynamic sizes in {k['kernel']} (a static compile folds these to constants; "
            f"no kernel of their own): {', '.join(dict.fromkeys(k['nodes']))}"
        )
    for note in summary.get("notes", []):
        console.print(f"note: {note}")


def report(artifact: str | Path, fmt: str = "table", gpu: str = "H100") -> str | None:
    """The report of an artifact: a JSON string for fmt="json", else printed as tables.
    gpu: the roofline's ceilings, a target name or product alias of `tritonnx.target`.
    Raises InputError for an unknown gpu."""
    try:
        gpu_targets.get(gpu)
    except KeyError as e:
        raise InputError(f"{e.args[0]}.") from None
    plan = load_plan(artifact)
    summary = summarize(plan, gpu)
    if fmt == "json":
        return json.dumps(summary, indent=1)
    render(summary, plan)
    return None
