"""Fusion, memory and compile time of tritonnx beside IREE, on the same ONNX files.

For each model (the onnx package's light models, with seeded random weights; the
networks the bench exports itself: a torchvision-style ResNet-50 and a BERT-base encoder
in plain torch (bench/torch_models.py), and transformers' BERT, DistilBERT, GPT-2 and ViT
with small configs (hf_*, tests/transformer_models.py), all at batch 1 except the hf_*
models (batch 2, sequence 16)), in one run:

  ONNX nodes           nodes of the graph as given
  tritonnx kernels     launches of the compiled plan (GPU tiles, target sm_90)
  IREE dispatches      kernel launch sites of IREE's program (CUDA, sm_80: IREE 3.13 knows
                       no sm_90; see bench/iree.py for what is counted)
  bytes / lower        tritonnx's modeled DRAM bytes over the absolute lower bound,
  bytes / mat.         ... over the materialization bound, and
  bytes / unfused      ... over the unfused plan (tritonnx.compiler.cost)
  peak / liveness      planned arena over the liveness lower bound (memory_plan)
  tritonnx s           compile without cubins (CPU interpreter), empty caches
  tritonnx cold s      compile to sm_90 cubins with empty caches (tritonnx's and Triton's),
                       for the models named by --cubins (default resnet50)
  tritonnx cached s    the same compile again, served from tritonnx's compile cache
  IREE s               iree-compile to a CUDA vmfb (after iree-import-onnx)
  IREE import s        iree-import-onnx, ONNX file to MLIR (tritonnx's seconds include its
                       own loading, checking and import of the file)

Needs no GPU. IREE lives in bench/.venv-iree (`bash bench/setup_iree.sh`); without it the
IREE columns are empty. Usage:

    python bench/fusion.py [--models resnet50,squeezenet,...] [--markdown docs/performance.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import onnx

BENCH = Path(__file__).resolve().parent
if not Path("/dev/nvidia0").exists():  # no GPU: Triton's interpreter, chosen before torch imports triton
    os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, str(BENCH))

import iree  # noqa: E402  (bench/iree.py)

LIGHT = [
    "resnet50",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "bvlc_alexnet",
    "zfnet512",
]
EXPORTED = ["torch_resnet50", "torch_bert_base"]
TRANSFORMERS = [
    "bert",
    "distilbert",
    "gpt2",
    "vit",
]  # transformers' classes, small configs (tests/transformer_models.py)


def light_path(name: str) -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def exported(name: str, workdir: Path) -> Path:
    """Exports one of the bench's own torch networks (bench/torch_models.py) to ONNX."""
    if name.startswith("hf_"):
        sys.path.insert(0, str(BENCH.parent / "tests"))
        import transformer_models

        return Path(transformer_models.export(name[3:], str(workdir), opset=17))
    import gpu

    cases = {"torch_resnet50": "resnet50-b1", "torch_bert_base": "bert-base-s128"}
    if name not in cases:
        raise ValueError(f"unknown model {name!r}")
    case = next(c for c in gpu.cases() if c.key == cases[name])
    path = workdir / f"{name}.onnx"
    gpu.export(case, case.build(), case.inputs(), path)
    return path


def tritonnx_figures(path: Path, workdir: Path, cubins: bool) -> dict:
    """Compile `path` cold (fresh caches), then again from the compile cache; to sm_90
    cubins when `cubins`, else for the CPU interpreter (the same kernels and fusion; at
    batch 1 the same modeled bytes, since only operands over the L2 size count re-reads)."""
    import tritonnx
    from tritonnx.compiler.cost import summarize

    caches = Path(tempfile.mkdtemp(prefix="caches-", dir=workdir))
    env = {"TRITON_CACHE_DIR": str(caches / "triton"), "TRITONNX_CACHE_DIR": str(caches / "tritonnx")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        t = time.perf_counter()
        targets = ("sm_90",) if cubins else ()
        model = tritonnx.compile(path, workdir / "tnx-cold", targets=targets)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        again = tritonnx.compile(path, workdir / "tnx-warm", targets=targets)
        warm = time.perf_counter() - t
        assert again.cached
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(caches, ignore_errors=True)
    totals = summarize(model.plan)["totals"]
    return {
        "kernels": totals["launches"],
        "bytes": totals["bytes"],
        "over_lower": totals["bytes_over_lower"],
        "over_materialization": totals["bytes_over_materialization"],
        "over_unfused": totals["bytes_over_unfused"],
        "peak_over_liveness": totals["peak_over_liveness"],
        "unfused_kernels": totals["unfused_kernels"],
        ("cold_s" if cubins else "cpu_s"): cold,
        "cached_s": warm,
    }


def run_model(name: str, workdir: Path, use_iree: bool, cubins: bool) -> dict:
    work = workdir / name
    work.mkdir(parents=True, exist_ok=True)
    row = {"model": name}
    try:
        if name in LIGHT:  # both compilers get the same copy with seeded random weights
            path = work / f"{name}-random.onnx"
            iree.randomize(str(light_path(name)), str(path), seed=0)
        else:
            path = exported(name, work)
        row["onnx_nodes"] = len(onnx.load(str(path), load_external_data=False).graph.node)
    except Exception as e:  # noqa: BLE001 - recorded in the row; the next model runs
        row["error"] = f"model: {type(e).__name__}: {e}"
        return row
    try:
        row.update(tritonnx_figures(path, work, cubins))
    except Exception as e:  # noqa: BLE001 - recorded in the row; the next model runs
        row["error"] = f"tritonnx: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    if use_iree:
        r = iree.iree_compile(str(path), str(work / "iree"))
        row.update({"iree_dispatches": r["dispatches"], "iree_s": r["compile_s"], "iree_import_s": r["import_s"]})
        if r["error"]:
            row["iree_error"] = r["error"]
    shutil.rmtree(work, ignore_errors=True)
    return row


def _f(v, spec):
    return "-" if v is None else format(v, spec)


COLUMNS = [
    ("model", "model", "s"),
    ("ONNX nodes", "onnx_nodes", "d"),
    ("tritonnx kernels", "kernels", "d"),
    ("IREE dispatches", "iree_dispatches", "d"),
    ("bytes / lower", "over_lower", ".2f"),
    ("bytes / mat.", "over_materialization", ".2f"),
    ("bytes / unfused", "over_unfused", ".2f"),
    ("peak / liveness", "peak_over_liveness", ".2f"),
    ("tritonnx s (no cubins)", "cpu_s", ".1f"),
    ("tritonnx cold s (sm_90 cubins)", "cold_s", ".1f"),
    ("tritonnx cached s", "cached_s", ".2f"),
    ("IREE s", "iree_s", ".1f"),
    ("IREE import s", "iree_import_s", ".1f"),
]


def versions() -> str:
    names = ["tritonnx", "triton", "onnx", "torch"]
    text = ", ".join(f"{n} {metadata.version(n)}" for n in names)
    return text + (f", iree-base-compiler {iree.version()}" if iree.available() else ", IREE not installed")


def markdown(rows: list[dict]) -> str:
    head = "| " + " | ".join(c for c, _, _ in COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = ""
    for r in rows:
        body += "| " + " | ".join(_f(r.get(k), spec) for _, k, spec in COLUMNS) + " |\n"
    notes = "".join(f"\n- {r['model']}: {r['error']}" for r in rows if "error" in r)
    notes += "".join(f"\n- {r['model']}: IREE {r['iree_error']}" for r in rows if "iree_error" in r)
    return head + body + (("\nErrors:" + notes + "\n") if notes else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        default=",".join(LIGHT + EXPORTED + [f"hf_{n}" for n in TRANSFORMERS]),
        help="comma-separated model names",
    )
    p.add_argument("--no-iree", action="store_true", help="leave IREE out")
    p.add_argument(
        "--cubins",
        default="resnet50",
        help="comma-separated models whose cold compile includes sm_90 cubins (default resnet50; "
        "'all' for every model: about 1.5 s per kernel per core on this machine)",
    )
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = p.parse_args(argv)
    use_iree = not args.no_iree and iree.available()
    if not args.no_iree and not use_iree:
        print("IREE is not installed (bash bench/setup_iree.sh); its columns stay empty.")
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tritonnx-bench-") as tmp:
        for name in args.models.split(","):
            console.print(f"[dim]{name} ...[/dim]")
            cubins = args.cubins == "all" or name in args.cubins.split(",")
            rows.append(run_model(name, Path(tmp), use_iree, cubins))
            console.print(json.dumps(rows[-1]))
    table = Table(title=f"tritonnx vs IREE, batch 1 ({datetime.date.today()}; {versions()})")
    for col, _, _ in COLUMNS:
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(*[_f(r.get(k), spec) for _, k, spec in COLUMNS])
    console.print(table)
    for r in rows:
        for key in ("error", "iree_error"):
            if key in r:
                console.print(f"{r['model']}: {key}: {r[key]}")
    if args.markdown:
        text = (
            f"Measured {datetime.date.today()} on {platform.machine()} with {os.cpu_count()} cores; "
            f"{versions()}.\n\n" + markdown(rows)
        )
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
