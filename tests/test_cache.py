"""The compile cache serves a repeated compile and only that."""

import numpy as np
from onnx import TensorProto, helper

import tritonnx


def _model(alpha=0.1):
    graph = helper.make_graph(
        [helper.make_node("LeakyRelu", ["x"], ["y"], alpha=alpha)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_repeated_compile_is_served_from_cache(tmp_path):
    first = tritonnx.compile(_model(), tmp_path / "a")
    again = tritonnx.compile(_model(), tmp_path / "b")
    assert not first.cached and again.cached
    assert again.plan == first.plan
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
    np.testing.assert_array_equal(again(x), np.where(x > 0, x, 0.1 * x))
    # anything that changes the result misses: another attribute, other options, dumps
    assert not tritonnx.compile(_model(alpha=0.2), tmp_path / "c").cached
    assert not tritonnx.compile(_model(), tmp_path / "d", override_initializers=("x",)).cached
    assert not tritonnx.compile(_model(), tmp_path / "e", dump_ir=tmp_path / "ir").cached
    assert not tritonnx.compile(_model(), tmp_path / "f", cache=False).cached
