"""ONNX conformance: the node tests in conformance_passing.txt must keep passing.

The list is written by `python -m tritonnx.conformance --update-passing
tests/conformance_passing.txt` and only grows. Here each listed test is compiled and run in
this process (no worker pool) to keep CI fast; the full suite, with time limits and crash
isolation, is the runner's job (see docs/conformance.md).
"""

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import tritonnx
import tritonnx.conformance.onnx_backend as backend
from tritonnx.conformance import Case, compare, run_case

PASSING = (
    [n for n in (Path(__file__).parent / "conformance_passing.txt").read_text().split() if not n.startswith("#")]
    if (Path(__file__).parent / "conformance_passing.txt").is_file()
    else []
)


@pytest.fixture(scope="session")
def node_cases():
    """The onnx node test cases by name (collecting them takes ~10 s, so only once)."""
    from tritonnx.conformance import collect_cases

    return {c.name: c for c in collect_cases(models=False)}


@pytest.mark.skipif(not PASSING, reason="tests/conformance_passing.txt lists no tests yet")
@pytest.mark.parametrize("name", PASSING or ["none"])
def test_node_conformance(name, node_cases):
    assert name in node_cases, f"{name} is no longer an onnx node test"
    result = run_case(node_cases[name])
    assert result.outcome == "pass", f"{name}: {result.outcome}: {result.reason}"


def _relu_model(shape=(3, 4)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_backend_prepare_run():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    rep = backend.prepare(_relu_model())
    outputs = rep.run([x])
    assert len(outputs) == 1 and outputs[0] is outputs["y"] is outputs.y
    np.testing.assert_array_equal(outputs[0], np.maximum(x, 0))
    np.testing.assert_array_equal(backend.run_model(_relu_model(), {"x": x})[0], np.maximum(x, 0))
    assert backend.supports_device("CPU") and not backend.supports_device("NPU")


def test_backend_unsupported_op():
    """A custom-domain op: a refusal naming the node, not a crash."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        "g",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(tritonnx.UnsupportedModelError):
        backend.prepare(model)


def test_compare():
    a = np.array([1.0, np.nan, 3.0], np.float32)
    assert compare([a], [a.copy()], 1e-3, 1e-7) is None  # NaN equals NaN
    assert "1/3 elements differ" in compare([a + np.float32([0, 0, 1])], [a], 1e-3, 1e-7)
    assert "shape" in compare([a[:2]], [a], 1e-3, 1e-7)
    assert "dtype" in compare([a.astype(np.float64)], [a], 1e-3, 1e-7)
    assert "strings differ" in compare([a], [np.array(["a", "b", "c"], dtype=object)], 1e-3, 1e-7)
    assert "expected a sequence" in compare([a], [[a]], 1e-3, 1e-7)
    assert "outputs" in compare([a, a], [a], 1e-3, 1e-7)


def _case(name, model, inputs, outputs):
    return Case(name, "Relu", "node", 1e-3, 1e-7, model.SerializeToString(), [(inputs, outputs)])


def test_runner_outcomes():
    """The pool classifies pass, fail, and a time-out as a crash, without dying itself."""
    from tritonnx.conformance.pool import run_cases

    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    good = _case("good", _relu_model(), [x], [np.maximum(x, 0)])
    bad = _case("bad", _relu_model(), [x], [np.maximum(x, 0) + 1])
    results = {r.name: r for r in run_cases([good, bad], jobs=1, timeout=60)}
    assert results["good"].outcome == "pass" and results["bad"].outcome == "fail"
    (slow,) = run_cases([good], jobs=1, timeout=0.001)
    assert slow.outcome == "crash" and "timed out" in slow.reason
