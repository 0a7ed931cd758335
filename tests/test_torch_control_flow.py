"""Control flow and data-dependent sizes as torch exports them (random weights, against
onnxruntime): torch.cond gives an If, a scripted loop gives a Loop, a score threshold with
NonZero and Gather gives a post-processing head whose size follows the scores. Each runs
as a program; the plan and the report list its sync points, which the tests count."""

import io
import warnings

import numpy as np
import onnx
import torch

import tritonnx
from models import ort_run


def _export(module, args, dynamo: bool, **kwargs) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(module, args, dynamo=True, verbose=False, **kwargs)
            buffer = io.BytesIO()
            program.save(buffer)
            return onnx.load_from_string(buffer.getvalue())
        buffer = io.BytesIO()
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=17, **kwargs)
        return onnx.load_from_string(buffer.getvalue())


def _ops(graph: onnx.GraphProto) -> set[str]:
    return {n.op_type for n in graph.node}


class Gate(torch.nn.Module):
    """torch.cond on the input's mean: one of two Linear branches."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(8, 8)
        self.down = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.cond(x.mean() > 0, lambda t: torch.relu(self.up(t)), lambda t: torch.tanh(self.down(t)), (x,))


def test_torch_cond_gives_an_if_that_runs_both_branches(tmp_path, capsys):
    from tritonnx.compiler import report

    torch.manual_seed(0)
    model = _export(Gate().eval(), (torch.randn(4, 8),), dynamo=True)
    assert "If" in _ops(model.graph)
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert compiled.plan["program"] and len(compiled.plan["host_reads"]) == 1
    name = model.graph.input[0].name
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    for sign in (1, -1):  # the mean's sign picks the branch
        feeds = {name: np.abs(x) * sign}
        np.testing.assert_allclose(
            compiled.run(feeds)[model.graph.output[0].name], ort_run(model, feeds)[0], rtol=1e-5, atol=1e-6
        )
    report.report(tmp_path / "art")
    assert "1 sync points" in capsys.readouterr().out


@torch.jit.script
def _accumulate(x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    acc = torch.zeros_like(x)
    for i in range(int(steps)):
        acc = acc * 0.5 + x * float(i + 1)
    return acc


class Refine(torch.nn.Module):
    def forward(self, x, steps):
        return _accumulate(torch.relu(x), steps)


def test_scripted_loop_gives_a_loop_with_a_trip_count_from_the_inputs(tmp_path):
    model = _export(Refine(), (torch.randn(3, 5), torch.tensor(3)), dynamo=False, input_names=["x", "steps"])
    assert "Loop" in _ops(model.graph)
    compiled = tritonnx.compile(model, tmp_path / "art")
    assert [s["step"] for s in compiled.plan["steps"]].count("loop") == 1
    assert any("trip count" in r for r in compiled.plan["host_reads"])
    x = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    for steps in (2, 5):
        feeds = {"x": x, "steps": np.array(steps, np.int64)}
        got = compiled.run(feeds)[model.graph.output[0].name]
        np.testing.assert_allclose(got, ort_run(model, feeds)[0], rtol=1e-5, atol=1e-5)


class Head(torch.nn.Module):
    """Detection post-processing: the boxes whose score passes a threshold, rescaled."""

    def __init__(self):
        super().__init__()
        self.score = torch.nn.Linear(16, 1)
        self.box = torch.nn.Linear(16, 4)

    def forward(self, features):
        scores = torch.sigmoid(self.score(features)).squeeze(-1)  # [N]
        keep = torch.nonzero(scores > 0.5)[:, 0]
        return self.box(features)[keep] * 2.0, scores[keep]


def test_score_threshold_nonzero_gather_head(tmp_path):
    torch.manual_seed(2)
    model = _export(Head().eval(), (torch.randn(32, 16),), dynamo=False, input_names=["features"])
    assert "NonZero" in _ops(model.graph)
    compiled = tritonnx.compile(model, tmp_path / "art")
    reads = compiled.plan["host_reads"]
    assert len(reads) == 1 and "count of nonzero elements" in reads[0]
    # NonZero runs as kernels into a buffer of its upper bound, then a bind step reads the count
    assert [s["step"] for s in compiled.plan["steps"]] == ["graph", "bind", "graph"]
    rng = np.random.default_rng(3)
    sizes = set()
    for _ in range(3):
        feeds = {"features": rng.standard_normal((32, 16)).astype(np.float32)}
        got = list(compiled.run(feeds).values())
        want = ort_run(model, feeds)
        sizes.add(want[0].shape[0])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert len(sizes) > 1, "the kept count should follow the scores"
