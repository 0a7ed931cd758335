"""CUDA graphs: on a GPU the runtime captures a run's launches once per set of input sizes
and replays them (tritonnx.runtime.CompiledModel, `cuda_graphs`). The tests that capture
need a CUDA device and skip without one; the decision of when not to capture is tested
everywhere."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import tritonnx
from models import make_resnet, ort_run

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _targets():
    major, minor = torch.cuda.get_device_capability()
    return ("sm_90",) if (major, minor) == (9, 0) else ("sm_80",) if major >= 8 else ()


def _dynamic_resnet() -> onnx.ModelProto:
    model = make_resnet(image=32, widths=(8, 16, 16, 16))
    for v in (model.graph.input[0], model.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    return model


def _gather_model() -> onnx.ModelProto:
    """y = Gather(table, idx) + 1: the indices come from data, so the run checks them."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [16, 8], np.arange(128, dtype=np.float32))
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "idx"], ["g"]), helper.make_node("Add", ["g", "one"], ["y"])],
        "gather",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        [table, one],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_when_runs_are_not_captured(tmp_path):
    """The reasons a run goes launch by launch: no GPU, the option off, an autotuning run,
    a plan step that reads the device from the host; and the numbers are the same either
    way."""
    model = tritonnx.compile(_gather_model(), tmp_path / "a")
    feeds = {"idx": np.array([0, 3, 15, -1])}
    if not torch.cuda.is_available():
        assert "no CUDA device" in model.graph_blocker()
        model.device = "cuda"  # the decision alone, for a model that would run on a GPU
    assert model.graph_blocker() is None
    assert "host" in model.graph_blocker({**model.plan, "host_reads": ["If_1"]})
    model._tune = 5
    assert "autotuning" in model.graph_blocker()
    model._tune = 0
    model.cuda_graphs = False
    assert "off" in model.graph_blocker()
    off = tritonnx.load(tmp_path / "a", cuda_graphs=False)
    assert off.cuda_graphs is False
    on = tritonnx.load(tmp_path / "a")
    np.testing.assert_array_equal(on.run(feeds)["y"], off.run(feeds)["y"])
    sess = tritonnx.InferenceSession(str(tmp_path / "a"), cuda_graphs=False)
    assert sess.compiled_model.cuda_graphs is False


@gpu
def test_replay_matches_onnxruntime_at_every_run(tmp_path):
    """Run 1 launches kernel by kernel, run 2 captures, runs 3+ replay: each on new input
    values gives onnxruntime's numbers, and the outputs of one run are not overwritten by
    the next (they are copies of the graph's static outputs)."""
    proto = make_resnet(image=32, widths=(8, 16, 16, 16))
    model = tritonnx.compile(proto, tmp_path / "r", targets=_targets())
    rng = np.random.default_rng(0)
    kept = []
    for run in range(4):
        x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        got = model.run({"input": torch.from_numpy(x).cuda()})["logits"]
        assert model.graphs_captured == (0 if run == 0 else 1)
        np.testing.assert_allclose(got.cpu().numpy(), ort_run(proto, {"input": x})[0], rtol=1e-4, atol=1e-4)
        kept.append((got, got.clone()))
    for got, copy in kept:
        torch.testing.assert_close(got, copy, rtol=0, atol=0)


@gpu
def test_one_graph_per_set_of_sizes(tmp_path):
    proto = _dynamic_resnet()
    model = tritonnx.compile(proto, tmp_path / "d", targets=_targets())
    rng = np.random.default_rng(1)
    for batch in (2, 3, 2, 3, 2, 3):
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        got = model.run({"input": x})["logits"]
        np.testing.assert_allclose(got, ort_run(proto, {"input": x})[0], rtol=1e-4, atol=1e-4)
    assert model.graphs_captured == 2
    eager = tritonnx.load(tmp_path / "d", cuda_graphs=False)
    eager.run({"input": x})
    eager.run({"input": x})
    assert eager.graphs_captured == 0


@gpu
def test_index_checks_in_a_replayed_graph(tmp_path):
    """The check buffers are zeroed inside the graph: a bad index in a replayed run raises,
    and the next good run neither raises nor carries the flag over."""
    model = tritonnx.compile(_gather_model(), tmp_path / "g", targets=_targets())
    good = {"idx": np.array([0, 3, 15, -1])}
    for _ in range(3):
        model.run(good)
    assert model.graphs_captured == 1
    with pytest.raises(IndexError, match="index 16 is out of range"):
        model.run({"idx": np.array([0, 16, 1, 2])})
    np.testing.assert_array_equal(
        model.run(good)["y"], np.arange(128, dtype=np.float32).reshape(16, 8)[good["idx"]] + 1
    )
