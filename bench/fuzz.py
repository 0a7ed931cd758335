"""Differential fuzzing at scale: random ONNX graphs (`tritonnx.fuzz`), compiled by tritonnx
and checked against onnxruntime.

    python bench/fuzz.py --count 10000 --start 0 --jobs 1 --out /tmp/fuzz

prints the results by category, per op type (graphs holding it, mismatches, refusals), the
time per graph and the first failing seeds; `--out DIR` gets `results.jsonl` (one line per
seed) and a reproducer (`seed-N.onnx`, `.npz`, `.txt`) for every mismatch and internal error.
Rerun one seed with `--start N --count 1`.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")  # no GPU: Triton's interpreter, chosen before triton loads
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

CATEGORIES = ("match", "mismatch", "internal", "timeout", "ort_differs", "refused", "ort_refused", "invalid")
BUGS = ("mismatch", "internal", "timeout")
_OUT: str | None = None
_TIMEOUT = 0


def _init(out, timeout):
    global _OUT, _TIMEOUT
    _OUT, _TIMEOUT = out, timeout
    import torch

    torch.set_num_threads(1)


def _alarm(signum, frame):
    raise TimeoutError


def run_seed(seed: int) -> dict:
    from tritonnx import fuzz

    t0 = time.perf_counter()
    if _TIMEOUT:
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(_TIMEOUT)
    try:
        case = fuzz.generate(seed)
        r = fuzz.check(case, _OUT)
        row = {
            "seed": seed,
            "status": r.status,
            "ops": r.ops,
            "opset": r.opset,
            "special": r.special,
            "detail": r.detail[:2000],
        }
    except TimeoutError:
        row = {
            "seed": seed,
            "status": "timeout",
            "ops": [],
            "opset": 0,
            "special": False,
            "detail": f"over {_TIMEOUT} s",
        }
    except Exception as e:  # noqa: BLE001 - a fuzzer bug must not end a long run
        row = {
            "seed": seed,
            "status": "invalid",
            "ops": [],
            "opset": 0,
            "special": False,
            "detail": f"fuzzer error: {type(e).__name__}: {e}",
        }
    finally:
        signal.alarm(0)
    row["seconds"] = round(time.perf_counter() - t0, 4)
    return row


def report(rows: list[dict], wall: float, jobs: int, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=140)
    n = len(rows)
    by = collections.Counter(r["status"] for r in rows)
    t = Table(title=f"{n} graphs (seeds {min(r['seed'] for r in rows)}-{max(r['seed'] for r in rows)})")
    t.add_column("category"), t.add_column("graphs", justify="right"), t.add_column("share", justify="right")
    t.add_column("with special inputs", justify="right")
    for c in CATEGORIES:
        k = by.get(c, 0)
        sp = sum(1 for r in rows if r["status"] == c and r["special"])
        t.add_row(c, str(k), f"{100 * k / n:.1f}%", str(sp))
    console.print(t)
    per = collections.defaultdict(collections.Counter)
    for r in rows:
        for op in r["ops"]:
            per[op]["graphs"] += 1
            per[op][r["status"]] += 1
    t = Table(title=f"per op type ({len(per)} types)")
    for col in ("op", "graphs", "match", "mismatch", "internal", "ort_differs", "refused", "ort_refused"):
        t.add_column(col, justify="left" if col == "op" else "right")
    for op in sorted(per, key=lambda o: (-per[o]["graphs"], o)):
        c = per[op]
        t.add_row(
            op,
            *(str(c[k]) for k in ("graphs", "match", "mismatch", "internal", "ort_differs", "refused", "ort_refused")),
        )
    console.print(t)
    secs = sorted(r["seconds"] for r in rows)
    console.print(
        f"time per graph: mean {sum(secs) / n:.3f} s, median {secs[n // 2]:.3f} s, "
        f"max {secs[-1]:.2f} s (seed {max(rows, key=lambda r: r['seconds'])['seed']}); "
        f"wall {wall:.0f} s with {jobs} job(s)"
    )
    for title, cats in (
        ("failing seeds (bugs)", BUGS),
        ("onnxruntime differs from the reference", ("ort_differs",)),
        ("refusals", ("refused",)),
    ):
        bad = [r for r in rows if r["status"] in cats]
        if not bad:
            continue
        console.print(f"\n[bold]{title}[/bold]: {len(bad)}; first {min(20, len(bad))}:")
        for r in bad[:20]:
            first = r["detail"].splitlines()[0] if r["detail"] else ""
            console.print(
                f"  seed {r['seed']} {r['status']}{' (special inputs)' if r['special'] else ''}: {first[:200]}",
                markup=False,
                highlight=False,
            )
    if any(r["status"] == "refused" for r in rows):
        msgs = collections.Counter(
            r["detail"].split(":", 1)[-1].strip()[:110] for r in rows if r["status"] == "refused"
        )
        console.print("\nrefusal messages:")
        for m, k in msgs.most_common(10):
            console.print(f"  {k:5d}  {m}", markup=False, highlight=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=None, help="directory for results.jsonl and reproducers")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per graph before it counts as a timeout")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.start, args.start + args.count)
    rows, t0 = [], time.perf_counter()
    log = open(out / "results.jsonl", "w") if out else None  # noqa: SIM115 - written row by row
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(
        args.jobs, initializer=_init, initargs=(str(out) if out else None, args.timeout), maxtasksperchild=200
    ) as pool:
        for i, row in enumerate(pool.imap(run_seed, seeds, chunksize=1), 1):
            rows.append(row)
            if log:
                log.write(json.dumps(row) + "\n")
                log.flush()
            if row["status"] in BUGS:
                print(f"seed {row['seed']}: {row['status']}: {row['detail'].splitlines()[0][:200]}", flush=True)
            if i % 100 == 0 or i == len(seeds):
                by = collections.Counter(r["status"] for r in rows)
                print(
                    f"[{i}/{len(seeds)} {time.perf_counter() - t0:.0f} s] "
                    + " ".join(f"{k}={v}" for k, v in sorted(by.items())),
                    flush=True,
                )
    if log:
        log.close()
    report(rows, time.perf_counter() - t0, args.jobs)
    return 1 if any(r["status"] in BUGS for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
