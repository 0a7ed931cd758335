"""ONNX's conformance suite against tritonnx.

    python -m tritonnx.conformance [--out docs/conformance.md] [--timeout 60] [--jobs N]
                                   [--filter REGEX] [--update-passing tests/conformance_passing.txt]

Runs every node test of `onnx.backend.test.case.node` (and the model tests of
`onnx.backend.test.case.model`) through `tritonnx.onnx_backend`, each in a worker process
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
import re
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OUTCOMES = ("pass", "fail", "unsupported", "crash")
LIGHT_DIR = Path("backend") / "test" / "data" / "light"  # inside the onnx package


@dataclass
class Case:
    """One conformance test, picklable for a worker process.

    kind: "node" or "simple" (a model with data sets) or "real" (a light model: random
    input, checked against the shipped output and onnxruntime)."""
    name: str
    op_type: str
    kind: str
    rtol: float
    atol: float
    model: bytes | str  # serialized ModelProto, or the light model's path for "real"
    data_sets: list | None = None  # [(inputs, expected outputs)]
    expected_output: str | None = None  # "real": the shipped output_0.pb


@dataclass
class Result:
    """What one test did. `missing` lists the op types tritonnx reported unsupported;
    `internal` is set when a CompileError wraps an internal exception (a bug in a pass
    rather than a refusal): its type, message and where it was raised."""
    name: str
    op_type: str
    kind: str
    outcome: str
    reason: str = ""
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)
    internal: str = ""


# --------------------------------------------------------------------------- collecting


def _default_domain_op(model) -> str | None:
    """op_type of the first default-domain node, else the first node as `domain.op_type`."""
    for node in model.graph.node:
        if node.domain in ("", "ai.onnx"):
            return node.op_type
    if model.graph.node:
        node = model.graph.node[0]
        return f"{node.domain}.{node.op_type}"
    return None


def _name_op(name: str) -> str:
    """Fallback op type from a test name: `test_foo_bar_expanded` -> `foo`."""
    return name.removeprefix("test_").split("_")[0]


def _to_numpy(value):
    """Test data as numpy: some cases hold TensorProto / SequenceProto / OptionalProto
    (what ONNX's runner reads back from .pb files as arrays, lists and None)."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, onnx.SequenceProto):
        return [_to_numpy(v) for v in numpy_helper.to_list(value)]
    if isinstance(value, onnx.OptionalProto):
        return _to_numpy(numpy_helper.to_optional(value))
    if isinstance(value, (list, tuple)):
        return [_to_numpy(v) for v in value]
    return value


def collect_cases(pattern: str | None = None, models: bool = True) -> list[Case]:
    """The node tests (and, with `models`, the model tests) whose name matches `pattern`.

    A node test's op type is that of the first default-domain node of its graph; an
    `_expanded` test (the op's function body) takes the op type of the test it expands.
    """
    import onnx
    from onnx.backend.test.case import model as model_cases
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators overflow casts on purpose
        nodes = node_cases.collect_testcases()
        others = model_cases.collect_testcases() if models else []
    ops = {c.name: _default_domain_op(c.model) or _name_op(c.name) for c in nodes}
    for name in ops:
        base = name.split("_expanded")[0]
        if base != name and base in ops:
            ops[name] = ops[base]
    wanted = re.compile(pattern) if pattern else None
    cases = []
    for c in [*nodes, *others]:
        if wanted and not wanted.search(c.name):
            continue
        if c.kind == "real":
            light = Path(onnx.__file__).parent / LIGHT_DIR
            cases.append(Case(c.name, "(model)", "real", c.rtol, c.atol,
                              str(light / f"light_{c.model_name}.onnx"),
                              expected_output=str(light / f"light_{c.model_name}_output_0.pb")))
        else:
            op = ops.get(c.name) or _default_domain_op(c.model) or _name_op(c.name)
            cases.append(Case(c.name, op, c.kind, c.rtol, c.atol, c.model.SerializeToString(),
                              [(_to_numpy(i), _to_numpy(o)) for i, o in c.data_sets]))
    return cases


# --------------------------------------------------------------------------- checking


def _mismatch(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when `actual` matches `expected` as ONNX's runner requires, else why not."""
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    if expected.dtype == object or expected.dtype.kind in "SU":
        return None if np.array_equal(actual, expected) else "strings differ"
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype}, expected {expected.dtype}"
    if expected.dtype.kind not in "biufc":  # ml_dtypes: bfloat16, float8, int4...
        if expected.dtype.name == "bfloat16":
            rtol = max(rtol, 2 ** -6)  # two bfloat16 ulps, as ONNX's runner allows
        actual, expected = actual.astype(np.float32), expected.astype(np.float32)
    try:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)  # NaN == NaN
        return None
    except AssertionError:
        pass
    with np.errstate(all="ignore"):
        bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))[bad]
    worst = float(np.nanmax(diff)) if diff.size and not np.all(np.isnan(diff)) else float("nan")
    return f"{int(bad.sum())}/{bad.size} elements differ (max abs diff {worst:.3g})"


def compare(actual, expected, rtol: float, atol: float) -> str | None:
    """None when every output matches, else a one-line reason naming the first bad output."""
    if len(actual) != len(expected):
        return f"{len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(e, (list, tuple)) or e is None:
            return f"output {i}: expected a {'sequence' if e is not None else 'None (optional)'}"
        try:
            why = _mismatch(np.asarray(a), np.asarray(e), rtol, atol)
        except Exception as err:  # noqa: BLE001 - e.g. dtypes numpy cannot compare
            why = f"cannot compare ({type(err).__name__}: {_first_line(err)})"
        if why:
            return f"output {i}: {why}"
    return None


def _first_line(err: BaseException, limit: int = 300) -> str:
    lines = [s for s in str(err).strip().splitlines() if s.strip()]
    text = lines[0].strip() if lines else type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _where(err: BaseException) -> str:
    """` [file.py:line in function]` of the frame that raised `err`, or ''."""
    tb = traceback.extract_tb(err.__traceback__)
    return f" [{Path(tb[-1].filename).name}:{tb[-1].lineno} in {tb[-1].name}]" if tb else ""


def _internal_cause(err: BaseException) -> str:
    """For a CompileError raised because a pass threw something else: that exception."""
    from tritonnx.errors import TritonnxError

    cause = err.__cause__
    if cause is None or isinstance(cause, TritonnxError):
        return ""
    return f"{type(cause).__name__}: {_first_line(cause, 160)}{_where(cause)}"


def _real_datasets(case: Case, rep) -> list:
    """A light model's data sets ({name: input}, outputs): seeded N(0,1) inputs with the
    output shipped with onnx, and the same inputs with onnxruntime's outputs when it is
    installed."""
    import onnx
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    feeds = {i["name"]: rng.standard_normal(i["shape"]).astype(i["dtype"]) for i in rep.compiled.plan["inputs"]}
    shipped = numpy_helper.to_array(onnx.load_tensor(case.expected_output))
    sets = [(feeds, [shipped])]
    try:
        import onnxruntime as ort
    except ImportError:
        return sets
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(case.model, opts, providers=["CPUExecutionProvider"])
    sets.append((feeds, session.run(None, feeds)))
    return sets


def run_case(case: Case) -> Result:
    """Compiles and runs one test in this process and classifies the outcome."""
    from tritonnx import onnx_backend
    from tritonnx.errors import CompileError, UnsupportedModelError

    start = time.perf_counter()

    def result(outcome, reason="", missing=(), internal=""):
        return Result(case.name, case.op_type, case.kind, outcome, reason,
                      round(time.perf_counter() - start, 3), sorted(set(missing)), internal)

    rep = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = onnx_backend.prepare(case.model)
            data_sets = _real_datasets(case, rep) if case.kind == "real" else case.data_sets
            for k, (inputs, expected) in enumerate(data_sets):
                actual = rep.run(inputs)
                why = compare(list(actual), list(expected), case.rtol, case.atol)
                if why:
                    against = "" if case.kind != "real" else (" vs shipped output" if k == 0 else " vs onnxruntime")
                    return result("fail", why + against)
        return result("pass")
    except UnsupportedModelError as e:
        return result("unsupported", f"UnsupportedModelError: {_first_line(e)}", [t for _, t, _ in e.nodes])
    except CompileError as e:
        return result("unsupported", f"CompileError: {_first_line(e)}", internal=_internal_cause(e))
    except Exception as e:  # noqa: BLE001 - classified, with where it came from
        return result("crash", f"{type(e).__name__}: {_first_line(e)}{_where(e)}")
    finally:
        if rep is not None:
            rep.close()


# --------------------------------------------------------------------------- report + CLI


def _passing_list(path: Path, results: list[Result]) -> tuple[list[str], list[str]]:
    """(new passing list, regressions): the listed names plus the node tests that passed
    now; regressions are listed tests that ran now and did not pass."""
    listed = set(path.read_text().split()) if path.is_file() else set()
    by_name = {r.name: r for r in results}
    regressions = sorted(n for n in listed if n in by_name and by_name[n].outcome != "pass")
    passing = listed | {r.name for r in results if r.kind == "node" and r.outcome == "pass"}
    return sorted(passing), regressions


def main(argv: list[str] | None = None) -> int:
    from tritonnx import conformance_report
    from tritonnx.conformance_pool import run_cases

    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m tritonnx.conformance", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="docs/conformance.md", help="Markdown report; JSON goes beside it")
    p.add_argument("--timeout", type=float, default=60, help="seconds per node test (default 60)")
    p.add_argument("--model-timeout", type=float, default=1800,
                   help="seconds per light-model test (default 1800: they take minutes on the interpreter)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
    p.add_argument("--filter", help="only tests whose name matches this regular expression")
    p.add_argument("--no-models", action="store_true", help="node tests only")
    p.add_argument("--update-passing", metavar="FILE",
                   help="add the node tests that passed to this list (it only grows)")
    p.add_argument("--quiet", action="store_true", help="no progress line per test")
    args = p.parse_args(argv)

    start = time.time()
    cases = collect_cases(args.filter, models=not args.no_models)
    print(f"{len(cases)} tests, {args.jobs} workers", file=sys.stderr)

    def progress(done, r):
        if not args.quiet:
            print(f"[{done}/{len(cases)}] {r.outcome:11} {r.name} ({r.seconds:.1f}s)"
                  + (f": {r.reason}" if r.outcome in ("fail", "crash") else ""), file=sys.stderr, flush=True)

    results = run_cases(cases, jobs=args.jobs, timeout=args.timeout, model_timeout=args.model_timeout,
                        on_result=progress)
    elapsed = time.time() - start
    meta = conformance_report.Meta(
        command="python -m tritonnx.conformance" + (" " + " ".join(argv) if argv else ""),
        seconds=elapsed, timeout=args.timeout, model_timeout=args.model_timeout, jobs=args.jobs)
    out = Path(args.out)
    conformance_report.write(out, out.with_suffix(".json"), results, meta)
    totals = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    print(f"{len(results)} tests in {elapsed:.0f}s: " + ", ".join(f"{v} {k}" for k, v in totals.items())
          + f"; report in {out}", file=sys.stderr)
    regressions = []
    if args.update_passing:
        path = Path(args.update_passing)
        passing, regressions = _passing_list(path, results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(n + "\n" for n in passing))
        if regressions:
            print(f"{len(regressions)} listed test(s) no longer pass: {', '.join(regressions)}", file=sys.stderr)
    return 1 if totals["crash"] or regressions else 0


if __name__ == "__main__":
    # run the imported module, not this __main__ copy, so that the Case and Result
    # classes the workers unpickle are tritonnx.conformance's
    import importlib
    sys.exit(importlib.import_module("tritonnx.conformance").main())
