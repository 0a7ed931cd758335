"""ONNX's conformance suite against tritonnx.

    python -m tritonnx.conformance [--out docs/conformance.md] [--timeout 60] [--jobs N]
                                   [--filter REGEX] [--update-passing tests/conformance_passing.txt]

Runs every node test of `onnx.backend.test.case.node` (and the model tests of
`onnx.backend.test.case.model`) through `tritonnx.conformance.onnx_backend`, each in a worker process
with a time limit, and writes a Markdown report plus `{test name: outcome}` as JSON beside
it. Outcomes:

- `pass`: every output matches (`np.testing.assert_allclose` with the case's rtol/atol,
  NaN equal to NaN, same shapes and dtypes, as ONNX's own runner checks);
- `fail`: wrong numbers, shapes, dtypes or output count;
- `unsupported`: tritonnx refused the model with UnsupportedModelError or CompileError;
- `crash`: anything else: another exception, a time-out, a worker that died.

Exit status: 1 when a test crashed or a test in the passing list no longer passes, else 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tritonnx.conformance import report
from tritonnx.conformance.cases import OUTCOMES, Result, collect_cases
from tritonnx.conformance.pool import run_cases


def _passing_list(path: Path, results: list[Result]) -> tuple[list[str], list[str]]:
    """(new passing list, regressions): the listed names plus the node tests that passed
    now; regressions are listed tests that ran now and did not pass."""
    listed = set(path.read_text().split()) if path.is_file() else set()
    by_name = {r.name: r for r in results}
    regressions = sorted(n for n in listed if n in by_name and by_name[n].outcome != "pass")
    passing = listed | {r.name for r in results if r.kind == "node" and r.outcome == "pass"}
    return sorted(passing), regressions


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m tritonnx.conformance", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="docs/conformance.md", help="Markdown report; JSON goes beside it")
    p.add_argument("--timeout", type=float, default=60, help="seconds per node test (default 60)")
    p.add_argument(
        "--model-timeout",
        type=float,
        default=1800,
        help="seconds per light-model test (default 1800: they take minutes on the interpreter)",
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
    p.add_argument("--filter", help="only tests whose name matches this regular expression")
    p.add_argument("--no-models", action="store_true", help="node tests only")
    p.add_argument(
        "--update-passing", metavar="FILE", help="add the node tests that passed to this list (it only grows)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress line per test")
    args = p.parse_args(argv)

    start = time.time()
    cases = collect_cases(args.filter, models=not args.no_models)
    print(f"{len(cases)} tests, {args.jobs} workers", file=sys.stderr)

    def progress(done, r):
        if not args.quiet:
            print(
                f"[{done}/{len(cases)}] {r.outcome:11} {r.name} ({r.seconds:.1f}s)"
                + (f": {r.reason}" if r.outcome in ("fail", "crash") else ""),
                file=sys.stderr,
                flush=True,
            )

    results = run_cases(
        cases, jobs=args.jobs, timeout=args.timeout, model_timeout=args.model_timeout, on_result=progress
    )
    elapsed = time.time() - start
    meta = report.Meta(
        command="python -m tritonnx.conformance" + (" " + " ".join(argv) if argv else ""),
        seconds=elapsed,
        timeout=args.timeout,
        model_timeout=args.model_timeout,
        jobs=args.jobs,
    )
    out = Path(args.out)
    report.write(out, out.with_suffix(".json"), results, meta)
    totals = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    print(
        f"{len(results)} tests in {elapsed:.0f}s: "
        + ", ".join(f"{v} {k}" for k, v in totals.items())
        + f"; report in {out}",
        file=sys.stderr,
    )
    regressions: list[str] = []
    if args.update_passing:
        path = Path(args.update_passing)
        passing, regressions = _passing_list(path, results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(n + "\n" for n in passing))
        if regressions:
            print(f"{len(regressions)} listed test(s) no longer pass: {', '.join(regressions)}", file=sys.stderr)
    return 1 if totals["crash"] or regressions else 0
