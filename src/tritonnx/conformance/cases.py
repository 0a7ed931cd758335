"""The conformance cases and how one is judged: `collect_cases` reads ONNX's own tests
(`onnx.backend.test.case.node` and `.model`) into picklable `Case`s, `run_case` compiles
and runs one through `tritonnx.conformance.onnx_backend` and classifies it as a `Result`
with one of OUTCOMES (see `tritonnx.conformance.runner` for what each means), `compare`
checks outputs as ONNX's own runner does."""

from __future__ import annotations

import re
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
            cases.append(
                Case(
                    c.name,
                    "(model)",
                    "real",
                    c.rtol,
                    c.atol,
                    str(light / f"light_{c.model_name}.onnx"),
                    expected_output=str(light / f"light_{c.model_name}_output_0.pb"),
                )
            )
        else:
            op = ops.get(c.name) or _default_domain_op(c.model) or _name_op(c.name)
            assert c.model is not None and c.data_sets is not None, "node and simple tests carry a model and data"
            cases.append(
                Case(
                    c.name,
                    op,
                    c.kind,
                    c.rtol,
                    c.atol,
                    c.model.SerializeToString(),
                    [(_to_numpy(i), _to_numpy(o)) for i, o in c.data_sets],
                )
            )
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
            rtol = max(rtol, 2**-6)  # two bfloat16 ulps, as ONNX's runner allows
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
        if e is None or a is None:  # an optional output
            if (a is None) != (e is None):
                return f"output {i}: {'got' if e is None else 'expected'} an empty optional"
            continue
        if isinstance(e, (list, tuple)):  # a sequence output: element by element
            if not isinstance(a, (list, tuple)) or len(a) != len(e):
                return f"output {i}: expected a sequence of {len(e)}, got {type(a).__name__}"
            why = compare(list(a), list(e), rtol, atol)
            if why:
                return f"output {i} (a sequence): {why}"
            continue
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
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    assert case.expected_output is not None, "collect_cases sets it for every real case"
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
    from tritonnx.conformance import onnx_backend
    from tritonnx.errors import CompileError, UnsupportedModelError

    start = time.perf_counter()

    def result(outcome, reason="", missing=(), internal=""):
        return Result(
            case.name,
            case.op_type,
            case.kind,
            outcome,
            reason,
            round(time.perf_counter() - start, 3),
            sorted(set(missing)),
            internal,
        )

    rep = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = onnx_backend.prepare(case.model)
            data_sets = _real_datasets(case, rep) if case.kind == "real" else case.data_sets
            assert data_sets is not None, "collect_cases sets them for every node and simple case"
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
