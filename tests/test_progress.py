"""The compile's progress bar (`tritonnx.compiler.driver._Progress`): it covers the whole
compile, the cubin jobs included, names the kernel being compiled, and appears after its
delay even while one long step runs."""

import io
import re
import threading
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from rich.console import Console

import tritonnx
from tritonnx.compiler import driver
from tritonnx.compiler.pipeline import stages


def _console():
    return Console(file=io.StringIO(), force_terminal=True, width=200)


def _conv_relu_gemm():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_relu_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])],
        [w, fc],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_progress_counts_passes_and_cubins(monkeypatch):
    """Compiling to cubin: the total is the import, the passes, writing the artifact and
    one step per kernel; every kernel is named while it compiles; the bar ends at
    total/total and leaves no timer running."""
    console, bars = _console(), []

    class Captured(driver._Progress):
        def __init__(self, total, enabled):
            super().__init__(total, enabled, console=console, delay=0)
            bars.append(self)

    monkeypatch.setattr(driver, "_Progress", Captured)
    model = tritonnx.compile(_conv_relu_gemm(), targets=("sm_90",), progress=True, cache=False)
    (bar,) = bars
    kernels = {launch["kernel"] for launch in model.plan["launches"]}
    total = len(stages()) + 2 + len(kernels)
    assert (bar.total, bar.completed, bar.jobs, bar.compiled) == (total, total, len(kernels), len(kernels))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", console.file.getvalue())  # every frame drawn, colours left out
    for k in kernels:
        assert f"{k} (sm_90)" in text
    assert re.search(rf"cubin \d+/{len(kernels)}: ", text)
    frames = [f.strip() for f in text.split("\r") if f.strip()]
    counts = [tuple(int(n) for n in f.rsplit(" ", 1)[-1].split("/")) for f in frames]  # the "done/total" column
    assert {t for _, t in counts} == {total - len(kernels), total}  # grown once, by the cubin jobs
    first_full = counts.index((total, total))  # 100% only once everything is done
    assert all(done < t for done, t in counts[:first_full]) and set(counts[first_full:]) == {(total, total)}
    assert not bar.timer.is_alive() and not bar.bar.live.is_started


def test_progress_appears_during_a_long_step():
    """No step is called, yet the bar shows after its delay with the current label."""
    console = _console()
    bar = driver._Progress(5, True, console=console, delay=0.05)
    time.sleep(0.5)
    assert bar.bar.live.is_started
    bar.close()
    assert "import" in console.file.getvalue() and "0/5" in console.file.getvalue()
    assert not bar.timer.is_alive() and not bar.bar.live.is_started


def test_progress_closed_before_its_delay_shows_nothing():
    console = _console()
    bar = driver._Progress(5, True, console=console, delay=30)
    bar.step("a pass")
    bar.close()
    assert console.file.getvalue() == ""
    assert not bar.timer.is_alive()


def test_progress_disabled_does_nothing():
    """progress=False: no rich bar, no timer thread."""
    threads = threading.active_count()
    bar = driver._Progress(5, False)
    bar.step("a pass")
    bar.add(2)
    bar.start("k (sm_90)")
    bar.done("k (sm_90)")
    assert bar.bar is None and bar.timer is None and threading.active_count() == threads
    bar.close()
