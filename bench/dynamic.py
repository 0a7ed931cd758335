"""Dynamic against static compiles of the same export, side by side in one run.

For transformers' BERT, DistilBERT, GPT-2 (tests/transformer_models.py's widths: hidden
64, 4 heads), exported with dynamic batch and sequence at each depth of --layers (2, the
tests' config, and 12, BERT-base's depth): the compile seconds (median of --repeat
compiles each, alternating, after one warm-up pair, caches off, CPU-interpreter tiles) of
the dynamic compile (the default) and of a static one (`shapes=` at batch 2, sequence 16),
the launches of each plan, and what the dynamic plan computes from the sizes (positions,
masks: what a static compile folds to constants) and in which kernel (plan
`launch["from_sizes"]`, as `tritonnx report` lists it).

    python bench/dynamic.py [--models bert,gpt2] [--layers 2,12] [--repeat 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tritonnx  # noqa: E402


def measure(name: str, layers: int, workdir: Path, repeat: int) -> dict:
    import transformer_models as tm

    tm.LAYERS = layers  # read when the model is built
    path = tm.export(name, str(workdir / f"layers{layers}"), opset=17, dynamic=True)
    shapes = {n: [2, 16] for n in tm.input_names(name)} if name != "vit" else None
    times: dict[str, list[float]] = {"dynamic": [], "static": []}
    plans = {}
    for i in range(repeat + 1):
        for kind in ("dynamic", "static"):
            t = time.perf_counter()
            model = tritonnx.compile(path, None, cache=False, shapes=shapes if kind == "static" else None)
            if i:  # the first pair warms up imports and caches of the process
                times[kind].append(time.perf_counter() - t)
            plans[kind] = model.plan
    d, s = statistics.median(times["dynamic"]), statistics.median(times["static"])
    from_sizes = [
        f"{launch['kernel'].rsplit('_', 1)[0]} ({', '.join(dict.fromkeys(launch['from_sizes']))})"
        for launch in plans["dynamic"]["launches"]
        if launch.get("from_sizes")
    ]
    return {
        "model": name,
        "layers": layers,
        "dynamic s": d,
        "static s": s,
        "ratio": d / s,
        "dynamic launches": len(plans["dynamic"]["launches"]),
        "static launches": len(plans["static"]["launches"]),
        "from sizes": list(dict.fromkeys(from_sizes)),
    }


def markdown(rows: list[dict]) -> str:
    out = [
        "| model | layers | dynamic compile s | static compile s | dynamic / static | dynamic launches | static launches |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['layers']} | {r['dynamic s']:.3f} | {r['static s']:.3f} | {r['ratio']:.2f}x "
            f"| {r['dynamic launches']} | {r['static launches']} |"
        )
    out.append("")
    for r in rows:
        if r["from sizes"] and r["layers"] == rows[0]["layers"]:
            out.append(f"- {r['model']}: computed from the sizes in: " + "; ".join(r["from sizes"]))
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="bert,distilbert,gpt2")
    p.add_argument("--layers", default="2,12", help="encoder depths to export, comma-separated")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        rows = [
            measure(m, int(n), Path(d), args.repeat) for n in args.layers.split(",") for m in args.models.split(",")
        ]
    text = markdown(rows)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
