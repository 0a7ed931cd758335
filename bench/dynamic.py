"""Dynamic against static compiles of the same export, side by side in one run.

For transformers' BERT, DistilBERT, GPT-2 (small configs, tests/transformer_models.py),
exported with dynamic batch and sequence: the compile seconds (median of --repeat
compiles each, alternating, caches off, CPU-interpreter tiles) of the dynamic compile
(the default) and of a static one (`shapes=` at batch 2, sequence 16), the launches of
each plan, and the kernels only the dynamic plan has (the ones that compute from the
sizes what the static plan folds: masks and positions over the sequence).

    python bench/dynamic.py [--models bert,gpt2] [--repeat 3] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tritonnx  # noqa: E402


def _nodes(launch: dict) -> str:
    return f"{launch['kernel'].rsplit('_', 1)[0]} ({', '.join(launch['nodes'])})"


def measure(name: str, workdir: Path, repeat: int) -> dict:
    import transformer_models as tm

    path = tm.export(name, str(workdir), opset=17, dynamic=True)
    shapes = {n: [2, 16] for n in tm.input_names(name)} if name != "vit" else None
    times: dict[str, list[float]] = {"dynamic": [], "static": []}
    plans = {}
    for _ in range(repeat):
        for kind in ("dynamic", "static"):
            t = time.perf_counter()
            model = tritonnx.compile(path, None, cache=False, shapes=shapes if kind == "static" else None)
            times[kind].append(time.perf_counter() - t)
            plans[kind] = model.plan
    static = Counter(tuple(launch["nodes"]) for launch in plans["static"]["launches"])
    extra = []
    for launch in plans["dynamic"]["launches"]:
        key = tuple(launch["nodes"])
        if static[key]:
            static[key] -= 1
        else:
            extra.append(_nodes(launch))
    d, s = statistics.median(times["dynamic"]), statistics.median(times["static"])
    return {
        "model": name,
        "dynamic s": d,
        "static s": s,
        "ratio": d / s,
        "dynamic launches": len(plans["dynamic"]["launches"]),
        "static launches": len(plans["static"]["launches"]),
        "only dynamic": extra,
    }


def markdown(rows: list[dict]) -> str:
    out = [
        "| model | dynamic compile s | static compile s | dynamic / static | dynamic launches | static launches |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['dynamic s']:.2f} | {r['static s']:.2f} | {r['ratio']:.2f}x "
            f"| {r['dynamic launches']} | {r['static launches']} |"
        )
    out.append("")
    for r in rows:
        if r["only dynamic"]:
            out.append(f"- {r['model']}: only in the dynamic plan: " + "; ".join(r["only dynamic"]))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="bert,distilbert,gpt2")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        rows = [measure(m, Path(d), args.repeat) for m in args.models.split(",")]
    text = markdown(rows)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
