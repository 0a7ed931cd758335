"""Index width per kernel (issue 11, item 3) and compile memory (item 11).

A kernel indexes in int32 unless some tensor it touches reaches 2^31 elements; then in int64
(`lower_to_tile.index_bits`). A dynamic size that int32 cannot bound is checked by the
runtime before anything launches. Compiling a model whose only large thing is its input
takes little memory (`importers.onnx.infer_shapes`).
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import tritonnx
from tritonnx.errors import InputError

BIG = 2**30 + 32  # an int8 [2, BIG] tensor has 2^31 + 64 elements: int32 offsets wrap


def _slice_model(shape, starts, ends, axes, dtype=TensorProto.INT8):
    """Slice-13 of input x (`shape`, `dtype`) with constant starts, ends and axes."""
    out = list(shape)
    for a, s, e in zip(axes, starts, ends):
        out[a] = e - s
    inits = [
        numpy_helper.from_array(np.array(v, np.int64), n)
        for n, v in (("starts", starts), ("ends", ends), ("axes", axes))
    ]
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])],
        "slice",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype, out)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _neg_model(shape, dtype=TensorProto.INT8):
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])],
        "neg",
        [helper.make_tensor_value_info("x", dtype, shape)],
        [helper.make_tensor_value_info("y", dtype, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _plan_and_sources(out):
    plan = json.loads((out / "plan.json").read_text())
    sources = {
        launch["kernel"]: (out / "kernels" / f"{launch['kernel']}.py").read_text() for launch in plan["launches"]
    }
    return plan, sources


def test_slice_of_int8_tensor_past_2_31_elements(tmp_path):
    """x[:, 2^30:] of an int8 [2, 2^30+32] input: the second row starts past 2^31 - 1 (an
    int32 kernel segfaults there); the int64 kernel reads the right 64 bytes."""
    out = tmp_path / "art"
    model = tritonnx.compile(_slice_model([2, BIG], [0, 2**30], [2, BIG], [0, 1]), out)
    plan, sources = _plan_and_sources(out)
    assert [launch["index_bits"] for launch in plan["launches"]] == [64]
    assert all("tl.program_id(0).to(tl.int64)" in s for s in sources.values())
    x = np.empty((2, BIG), np.int8)  # 2 GiB of address space; only the pages written are touched
    x[:, 2**30 :] = (np.arange(64).reshape(2, 32) - 40).astype(np.int8)
    x[:, 2**30 - 4 : 2**30] = 99  # just before the slice
    y = model.run({"x": x})["y"]
    np.testing.assert_array_equal(y, x[:, 2**30 :])


def test_elementwise_past_2_31_elements_is_int64_and_compiles_for_sm90(tmp_path):
    """Neg over int8 [1, 2^31+64] (not run: the interpreter would take hours): its kernel is
    int64-indexed and compiles to sm_90 cubin."""
    out = tmp_path / "art"
    tritonnx.compile(_neg_model([1, 2**31 + 64]), out, targets=("sm_90",))
    plan, sources = _plan_and_sources(out)
    (launch,) = plan["launches"]
    assert launch["index_bits"] == 64
    source = sources[launch["kernel"]]
    assert "tl.int64" in source and "tl.arange(0, " in source and ".to(tl.int64)" in source
    assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_small_model_stays_int32(tmp_path):
    out = tmp_path / "art"
    model = tritonnx.compile(_slice_model([4, 64], [1, 8], [3, 40], [0, 1]), out)
    plan, sources = _plan_and_sources(out)
    assert all(launch["index_bits"] == 32 for launch in plan["launches"])
    assert not any("tl.int64" in s for s in sources.values())
    x = np.arange(256, dtype=np.int8).reshape(4, 64)
    np.testing.assert_array_equal(model.run({"x": x})["y"], x[1:3, 8:40])


def test_dynamic_size_is_guarded_for_int32(tmp_path):
    """A dynamic [n, 8] tensor: the kernel stays int32, and the runtime refuses an n that
    would take it past 2^31 elements (before launching), naming the condition."""
    out = tmp_path / "art"
    model = tritonnx.compile(_neg_model(["n", 8]), out)
    plan, _ = _plan_and_sources(out)
    assert [launch["index_bits"] for launch in plan["launches"]] == [32]
    assert any(cond.startswith("8*n <= ") and "int32" in reason for cond, reason in plan["guards"])
    np.testing.assert_array_equal(model.run({"x": np.ones((3, 8), np.int8)})["y"], -np.ones((3, 8), np.int8))
    with pytest.raises(InputError, match="int32 index arithmetic"):
        model.run({"x": np.empty((2**28, 8), np.int8)})  # 2^31 elements of address space, untouched


def test_dynamic_kernel_past_2_31_at_any_size_is_int64(tmp_path):
    """A dynamic [n, 2^31+64] tensor is over the limit at n = 1: int64, with its symbol
    argument widened (launch signature i64, cast in the source); compiles to sm_90."""
    out = tmp_path / "art"
    tritonnx.compile(_neg_model(["n", 2**31 + 64]), out, targets=("sm_90",))
    plan, sources = _plan_and_sources(out)
    (launch,) = plan["launches"]
    assert launch["index_bits"] == 64 and launch["symbols"] == ["n"]
    assert launch["signature"][len(launch["buffers"])] == "i64"  # the symbol, before the constexpr blocks
    assert "tl.cast(n, tl.int64)" in sources[launch["kernel"]]
    assert not plan.get("guards")


# peak RSS from /proc (VmHWM), which exec resets: getrusage's ru_maxrss survives exec and
# reports the forking pytest process's size
COMPILE_MEMORY = textwrap.dedent("""
    import sys
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    import tritonnx
    n = 64 * 1024 * 1024
    inits = [numpy_helper.from_array(np.array([v], np.int64), k) for k, v in (("s", n - 64), ("e", n), ("a", 0))]
    graph = helper.make_graph([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64])], inits)
    def peak_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM:"))
    base = peak_mb()
    tritonnx.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1], cache=False)
    print(base, peak_mb())
""")


def test_compile_memory_of_a_1d_slice_over_64m_elements(tmp_path):
    """A 1-D Slice over a 64M-element float input compiles in under 1 GB (peak RSS of the
    compiling process, imports included: about 400 MB; onnx's data propagation took 5.5 GB)."""
    result = subprocess.run(
        [sys.executable, "-c", COMPILE_MEMORY, str(tmp_path / "art")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    base_mb, peak_mb = map(int, result.stdout.split()[-2:])
    assert peak_mb < 1024, f"compile peak RSS {peak_mb} MB (after imports {base_mb} MB)"
