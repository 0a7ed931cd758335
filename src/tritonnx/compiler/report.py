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
        scales = ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))
    for scale, prefix in scales:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _op_types(artifact: str | Path | None) -> dict[str, str]:
    """ONNX node name (`tritonnx.importers.onnx.node_names`: an unnamed node's name is
    `<op_type>_<index>`) -> op type, from the artifact's model.onnx (empty when there is
    none)."""
    if artifact is None or not (Path(artifact) / "model.onnx").is_file():
        return {}
    import onnx

    from tritonnx.importers.onnx import node_names

    model = onnx.load(str(Path(artifact) / "model.onnx"), load_external_data=False)
    return {name: node.op_type for name, node in zip(node_names(model.graph), model.graph.node)}


def _user_node(name: str) -> str:
    """The model's node a plan node stands for: itself, or the node whose function onnx's
    inliner expanded into it."""
    from tritonnx.dialects.verify import user_node

    return user_node(name, "")[0]


def _op_summary(nodes: list[str], ops: dict[str, str]) -> str:
    """The op types of a launch's nodes joined with "+", e.g. Conv+Relu (an inlined
    function's nodes under the op type of the node that called it)."""
    return "+".join(ops.get(u, "?") for u in dict.fromkeys(_user_node(n) for n in nodes))


def _node_names(nodes: list[str], ops: dict[str, str]) -> str:
    return ", ".join(f"{n} ({ops[_user_node(n)]})" if _user_node(n) in ops else n for n in nodes)


def render(summary: dict, plan: dict, console=None, *, wide: bool = False, ops: dict[str, str] | None = None) -> None:
    """Prints the per-kernel table and the totals with rich. By default the table has the
    columns that fit 80 characters (long text wraps, never cut); wide=True adds the ONNX node
    names, grid, block and warps. ops: ONNX node name -> op type (`_op_types`)."""
    from rich.console import Console
    from rich.table import Table

    ops = ops or {}
    console = console or Console(width=None if Console().is_terminal else 200)
    tiles = "GPU tiles" if plan.get("targets") else "CPU-interpreter tiles (compile with --target for GPU tiles)"
    if summary.get("sizes"):
        tiles += "; dynamic sizes: figures at the size hints " + ", ".join(
            f"{k}={v}" for k, v in summary["sizes"].items()
        )
    from rich import box

    # no vertical rules, one space between columns (the box's): the default columns fit 80 characters
    table = Table(
        title=f"kernels, roofline on {summary['gpu']} ({tiles})",
        show_lines=False,
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
    )
    cols = ["#", "kernel", "ops"]  # the kind shows in the kernel's name and its ops
    if wide:
        cols += ["kind", "ONNX nodes", "grid", "block", "warps"]
    cols += ["FLOPs", "bytes", "time", "bound"]
    # the kernel name is what a user greps for: the other cells wrap first (rich shrinks
    # only wrapping columns), and it folds, never "…", when even that is not enough
    for col in cols:
        table.add_column(
            col,
            justify="right" if col in ("#", "warps", "FLOPs", "bytes", "time") else "left",
            overflow="fold",
            no_wrap=col == "kernel",
        )
    for i, r in enumerate(summary["launches"]):
        row = [str(i), r["kernel"], _op_summary(r["nodes"], ops)]
        if wide:
            row += [
                r["kind"],
                _node_names(r["nodes"], ops),
                "x".join(map(str, r["grid"])),
                "x".join(str(v) for v in r["block"].values()),
                str(r["num_warps"]),
            ]
        row += [_si(r["flops"], "FLOP"), _si(r["bytes"], "B"), _si(r["time_s"], "s"), r["bound"]]
        table.add_row(*row)
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


def report(
    artifact: str | Path, fmt: str = "table", gpu: str = "H100", *, wide: bool = False, console=None
) -> str | None:
    """The report of an artifact: a JSON string for fmt="json", else printed as tables
    (wide=True: every column). gpu: the roofline's ceilings, a target name or product alias
    of `tritonnx.target`. Raises InputError for an unknown gpu."""
    try:
        gpu_targets.get(gpu)
    except KeyError as e:
        raise InputError(f"{e.args[0]}.") from None
    plan = load_plan(artifact)
    if plan.get("program"):
        return _report_program(Path(artifact), plan, fmt, gpu, wide, console)
    summary = summarize(plan, gpu)
    if fmt == "json":
        return json.dumps(summary, indent=1)
    render(summary, plan, console, wide=wide, ops=_op_types(artifact))
    return None


def _parts(step: dict) -> list[tuple[str, dict]]:
    """(label, part) of a program step's sub-artifacts: itself, or its branches or body."""
    if step["step"] == "graph":
        return [("", step)]
    return [(a, step[a]) for a in ("then_branch", "else_branch", "body") if a in step]


def _report_program(root: Path, plan: dict, fmt: str, gpu: str, wide: bool, console) -> str | None:
    """A program's report (`tritonnx.compiler.program`): its steps with their sync points,
    then each sub-artifact's report under its step."""
    if fmt == "json":
        return json.dumps(
            {
                "steps": [
                    {
                        "step": s["step"],
                        "node": s.get("node"),
                        **{
                            label or "graph": json.loads(report(root / part["dir"], "json", gpu) or "{}")
                            for label, part in _parts(s)
                        },
                    }
                    for s in plan["steps"]
                ],
                "sync_points": plan["host_reads"],
            },
            indent=1,
        )
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"program: {len(plan['steps'])} steps, {len(plan['host_reads'])} sync points")
    for col in ("#", "step", "node", "sub-artifacts", "sync point"):
        table.add_column(col, overflow="fold")
    reads = {r.split(":", 1)[0]: r.split(": ", 1)[1] for r in plan["host_reads"]}
    for i, s in enumerate(plan["steps"]):
        table.add_row(
            str(i),
            s["step"],
            s.get("node", ""),
            ", ".join(p["dir"] for _, p in _parts(s)),
            reads.get(s.get("node", ""), ""),
        )
    console.print(table)
    for i, s in enumerate(plan["steps"]):
        for label, part in _parts(s):
            console.print(
                f"\nstep {i} ({s['step']}{' ' + s['node'] if s.get('node') else ''}{' ' + label if label else ''}): {part['dir']}"
            )
            report(root / part["dir"], fmt, gpu, wide=wide, console=console)
    return None


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(artifact: str | Path, plan: dict | None = None) -> str:
    """The artifact's ONNX graph in graphviz's dot language, each launch's nodes a cluster
    labelled with its kernel name; nodes in no launch (folded away) drawn plain."""
    import onnx

    plan = plan or load_plan(artifact)
    model = onnx.load(str(Path(artifact) / "model.onnx"), load_external_data=False)
    from tritonnx.importers.onnx import node_names

    names = node_names(model.graph)
    lines = ["digraph tritonnx {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    grouped: set[str] = set()
    for i, launch in enumerate(plan["launches"]):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_dot_id(f'#{i} ' + launch['kernel'])}; style=rounded; color=blue;")
        for n in dict.fromkeys(_user_node(n) for n in launch["nodes"]):
            if n not in grouped:
                grouped.add(n)
                lines.append(f"    {_dot_id(n)};")
        lines.append("  }")
    for name, node in zip(names, model.graph.node):
        label = _dot_id(name)[:-1] + "\\n" + _dot_id(node.op_type)[1:]
        lines.append(f"  {_dot_id(name)} [label={label}];")
        if name not in grouped:
            lines.append(f"  {_dot_id(name)} [style=dashed];")
    producer = {out: name for name, node in zip(names, model.graph.node) for out in node.output if out}
    for name, node in zip(names, model.graph.node):
        for inp in dict.fromkeys(node.input):
            if inp in producer:
                lines.append(f"  {_dot_id(producer[inp])} -> {_dot_id(name)} [label={_dot_id(inp)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(artifact: str | Path, out: str | Path) -> list[str]:
    """Writes the fusion graph: the .dot beside out always, and out (an .svg or any format
    `dot -T` knows, from its suffix) when graphviz's `dot` is on PATH. Returns the messages
    to print."""
    import shutil
    import subprocess

    out = Path(out)
    dot_path = out.with_suffix(".dot")
    text = graph_dot(artifact)
    if dot_path != out and dot_path.exists():  # a file the user did not name: never replaced
        from tritonnx.errors import OutputPathError

        raise OutputPathError(
            f"{dot_path} exists; tritonnx writes the graph's .dot beside {out.name} only when it is new."
        )
    dot_path.write_text(text)
    msgs = [f"wrote {dot_path}"]
    if out == dot_path:
        return msgs
    dot = shutil.which("dot")
    if dot is None:
        msgs.append(
            f"{out} needs graphviz's `dot` on PATH: dot -T{out.suffix.lstrip('.') or 'svg'} {dot_path} -o {out}"
        )
        return msgs
    fmt = out.suffix.lstrip(".") or "svg"
    subprocess.run([dot, f"-T{fmt}", str(dot_path), "-o", str(out)], check=True)
    msgs.append(f"wrote {out}")
    return msgs


PROTOBUF_LIMIT = 2**31 - 1 - 2**20  # bytes: a larger model is saved with its weights as external data


def write_annotated_onnx(artifact: str | Path, out: str | Path, plan: dict | None = None) -> str:
    """Writes the artifact's model.onnx to out with each node's kernel in its metadata_props
    (tritonnx.kernel, tritonnx.launch = launch index), for Netron. Returns a message."""
    import onnx

    plan = plan or load_plan(artifact)
    model = onnx.load(str(Path(artifact) / "model.onnx"))
    from tritonnx.importers.onnx import node_names

    where: dict[str, tuple[int, str]] = {}
    for i, launch in enumerate(plan["launches"]):
        for n in launch["nodes"]:
            where.setdefault(_user_node(n), (i, launch["kernel"]))
    for name, node in zip(node_names(model.graph), model.graph.node):
        hit = where.get(name)
        if hit is None:
            continue
        keep = [p for p in node.metadata_props if not p.key.startswith("tritonnx.")]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
        node.metadata_props.add(key="tritonnx.kernel", value=hit[1])
        node.metadata_props.add(key="tritonnx.launch", value=str(hit[0]))
    out = Path(out)
    if model.ByteSize() > PROTOBUF_LIMIT:
        data = out.with_name(out.name + ".data")
        if data.exists():  # a file the user did not name: never replaced
            from tritonnx.errors import OutputPathError

            raise OutputPathError(
                f"{data} exists; tritonnx writes the weights of {out.name} beside it only when it is new."
            )
        onnx.save(model, str(out), save_as_external_data=True, location=data.name)
    else:
        onnx.save(model, str(out))
    return f"wrote {out}"
