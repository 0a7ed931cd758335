"""Every generated kernel compiles ahead of time to sm_90 cubin, without a GPU."""

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

import tritonnx
from models import light_model_path, make_resnet


@pytest.mark.parametrize("model", ["resnet50", "squeezenet", pytest.param("vgg19", marks=pytest.mark.slow), "resnet17"])
def test_cubins(model, tmp_path):
    source = make_resnet() if model == "resnet17" else light_model_path(model)
    out = tmp_path / "art"
    tritonnx.compile(source, out, targets=("sm_90",))
    plan = json.loads((out / "plan.json").read_text())
    kernels = {launch["kernel"] for launch in plan["launches"]}
    for k in kernels:
        cubin = (out / "kernels" / f"{k}.sm_90.cubin").read_bytes()
        assert cubin[:4] == b"\x7fELF"
    assert all(launch["cubins"] == {"sm_90": f"{launch['kernel']}.sm_90.cubin"} for launch in plan["launches"])


def test_cubin_loads_as_triton_kernel(tmp_path):
    """The runtime's cubin loader builds Triton's CompiledKernel from the artifact alone
    (launching needs a GPU; building the kernel object does not)."""
    out = tmp_path / "art"
    tritonnx.compile(make_resnet(), out, targets=("sm_90", "sm_80"))
    plan = json.loads((out / "plan.json").read_text())
    launch = plan["launches"][0]
    code = (
        "import sys; from pathlib import Path; from tritonnx.runtime import CompiledModel, cubin; "
        f"m = CompiledModel({str(out)!r}); "  # the kernel source as the runtime verifies and runs it
        f"k = cubin.load(m._kernel_function({launch['kernel']!r}), Path({str(out / 'kernels')!r}), "
        f"{launch['kernel']!r}, 'sm_80', {launch['signature']!r}); "
        "assert k.kernel[:4] == b'\\x7fELF', k.kernel[:4]; "
        f"assert k.metadata.target.arch == 80 and k.metadata.num_warps == {launch['num_warps']}; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_cubins_for_every_template(tmp_path):
    """One model that uses every kernel template (dot, batched dot, reduce, norm, softmax,
    scan, top_k, pool, stencil, views) compiles to sm_90 cubin."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    inits = {
        "w": rng.standard_normal((8, 8)).astype(np.float32),
        "s": np.ones(8, np.float32),
        "ax": np.array([1], np.int64),
        "k": np.array([3], np.int64),
        "i": np.array([0, 2], np.int64),
        "sc": np.array([1, 1, 2, 2], np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),  # batched dot
        helper.make_node("LayerNormalization", ["m", "s"], ["ln"]),  # norm
        helper.make_node("Softmax", ["ln"], ["sm"], axis=-1),  # softmax
        helper.make_node("CumSum", ["sm", "ax"], ["cs"]),  # scan
        helper.make_node("ReduceMax", ["cs", "ax"], ["rm"], keepdims=1),  # reduce
        helper.make_node("TopK", ["cs", "k"], ["tv", "ti"], axis=-1),  # top_k
        helper.make_node("Gather", ["tv", "i"], ["g"], axis=2),  # view
        helper.make_node("Unsqueeze", ["cs", "ax"], ["u"]),
        helper.make_node("Resize", ["u", "", "sc"], ["r"], mode="linear"),  # view with arithmetic
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),  # pool
        helper.make_node("LRN", ["p"], ["l"], size=3),  # stencil
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", f, [2, 4, 8])],
        [helper.make_tensor_value_info(n, f, None) for n in ("rm", "g", "l")]
        + [helper.make_tensor_value_info("ti", TensorProto.INT64, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    out = tmp_path / "art"
    tritonnx.compile(model, out, targets=("sm_90",))
    plan = json.loads((out / "plan.json").read_text())
    assert {launch["kind"] for launch in plan["launches"]} >= {"mat_mul", "norm", "softmax", "reduce", "top_k", "pool"}
    for launch in plan["launches"]:
        assert (out / "kernels" / f"{launch['kernel']}.sm_90.cubin").read_bytes()[:4] == b"\x7fELF"


def test_autotune_candidates(tmp_path):
    """A GPU compile keeps a few other tilings of every dot kernel in the artifact: each is a
    real GPU kernel (compiles to sm_90 cubin) and computes the same numbers (run here on the
    interpreter with `use_candidate`); `autotune` is a no-op without a GPU."""
    import numpy as np

    from models import ort_run
    from tritonnx.compiler.aot import compile_kernels

    proto = make_resnet(seed=0, batch=1)
    model = tritonnx.compile(proto, tmp_path / "art", targets=("sm_90",))
    dots = [launch for launch in model.launches if launch["kind"] in ("conv", "gemm")]
    assert dots and all(1 <= len(launch["candidates"]) <= 3 for launch in dots)
    chosen = [(launch["block"], launch["num_warps"], launch["num_stages"]) for launch in dots]
    assert all(
        (c["block"], c["num_warps"], c["num_stages"]) != mine
        for launch, mine in zip(dots, chosen)
        for c in launch["candidates"]
    )
    x = np.random.default_rng(0).standard_normal(model.plan["inputs"][0]["shape"]).astype(np.float32)
    ref = ort_run(proto, {"input": x})[0]
    assert model.autotune({"input": x}) == {}
    for launch in dots[:2]:
        for i in range(len(launch["candidates"])):
            model.use_candidate(launch["kernel"], i)
            np.testing.assert_allclose(model(x), ref, rtol=1e-4, atol=1e-5)
        model.use_candidate(launch["kernel"], None)
    # the candidates are configs of the launch's own kernel: every one compiles to sm_90
    assert all(c["kernel"] == dots[0]["kernel"] for c in dots[0]["candidates"])
    out = tmp_path / "cubins"
    out.mkdir()
    for c in dots[0]["candidates"]:
        copy = out / f"{c['kernel']}.py"
        copy.write_bytes((model.path / "kernels" / f"{c['kernel']}.py").read_bytes())
        compile_kernels(
            [
                {
                    "file": str(copy),
                    "kernel": c["kernel"],
                    "signature": dots[0]["signature"],
                    "constexprs": c["constexprs"],
                    "num_warps": c["num_warps"],
                    "num_stages": c["num_stages"],
                    "targets": ["sm_90"],
                }
            ]
        )
        assert (out / f"{c['kernel']}.sm_90.cubin").stat().st_size > 0


def test_split_k(tmp_path):
    """A batch-1 classifier layer (Gemm [1, 8192] x [8192, 256], bias, Relu) has too few
    output blocks to fill the SMs: for a GPU it becomes a batched MatMul over slices of K and
    a ReduceSum that carries the bias and Relu; the numbers do not change."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from models import ort_run

    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 8192)).astype(np.float32) / 90
    b = rng.standard_normal(256).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1), helper.make_node("Relu", ["g"], ["y"])],
        "fc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8192])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    model = tritonnx.compile(proto, tmp_path / "gpu", targets=("sm_90",))
    kinds = [(launch["kind"], launch["grid"]) for launch in model.launches]
    assert [k for k, _ in kinds] == ["mat_mul", "reduce"] and kinds[0][1][2] > 1, kinds
    x = rng.standard_normal((1, 8192)).astype(np.float32)
    np.testing.assert_allclose(model(x), ort_run(proto, {"x": x})[0], rtol=1e-4, atol=1e-4)
    assert [launch["kind"] for launch in tritonnx.compile(proto, tmp_path / "cpu").launches] == ["gemm"]


def test_workers_report_the_failing_kernel(tmp_path):
    """A kernel Triton cannot compile: the error names it; the pool's processes are reused
    across jobs and closed after."""
    from tritonnx.compiler.aot import Workers

    good = tmp_path / "k_good.py"
    good.write_text(
        "import triton\nimport triton.language as tl\n\n\n@triton.jit\ndef k_good(x, out):\n"
        "    tl.store(out + tl.arange(0, 16), tl.load(x + tl.arange(0, 16)))\n"
    )
    bad = tmp_path / "k_bad.py"
    bad.write_text(
        "import triton\nimport triton.language as tl\n\n\n@triton.jit\ndef k_bad(x, out):\n"
        "    tl.store(out + tl.arange(0, 10), tl.load(x))\n"
    )  # arange needs a power of two
    job = {"signature": ["*fp32", "*fp32"], "num_warps": 4, "num_stages": 1, "targets": ["sm_90"]}
    with Workers(1) as pool:
        pool.run([{**job, "file": str(good), "kernel": "k_good"}])
        with pytest.raises(tritonnx.CompileError, match="k_bad: .*power of 2|k_bad: .*power of two"):
            pool.run([{**job, "file": str(bad), "kernel": "k_bad"}])
        procs = [p for p, _ in pool.procs]
    assert (tmp_path / "k_good.sm_90.cubin").stat().st_size > 0
    assert all(p.poll() is not None for p in procs)


_PTX = """
import json, sys
from tritonnx.compiler import aot
for line in sys.stdin:
    job = json.loads(line)
    ptx = aot.compile_one(job, "sm_90").asm["ptx"]
    loads = [ln for ln in ptx.splitlines() if "ld.global" in ln]
    print(json.dumps([job["kernel"], job["hinted"], sum("ld.global.v4" in ln for ln in loads), len(loads)]))
"""


def _small_cnn():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), "w")
    w1 = numpy_helper.from_array(rng.standard_normal((16, 16, 1, 1)).astype(np.float32), "w1")
    fc = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"]),  # 1x1: a GEMM over contiguous pixels
        helper.make_node("Relu", ["c1"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 32])],
        [w, w1, fc],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_aot_kernels_vectorize_global_loads(tmp_path):
    """The plan records that every pointer is 16-byte aligned (`divisibility_16`), the cubins
    are compiled with `tt.divisibility` on them, and the sm_90 PTX of the conv and GEMM
    kernels then loads with `ld.global.v4`, which no kernel does without the hints."""
    model = tritonnx.compile(_small_cnn(), tmp_path / "art", targets=("sm_90",))
    jobs = []
    for launch in model.launches:
        assert launch["divisibility_16"] == list(range(len(launch["buffers"])))
        if launch["kind"] in ("conv", "mat_mul", "gemm"):
            for hinted in (True, False):
                job = {
                    "file": str(model.path / "kernels" / f"{launch['kernel']}.py"),
                    "kernel": launch["kernel"],
                    "signature": launch["signature"],
                    "constexprs": launch.get("constexprs", {}),
                    "num_warps": launch["num_warps"],
                    "num_stages": launch["num_stages"],
                    "divisibility_16": launch["divisibility_16"] if hinted else [],
                    "hinted": hinted,
                }
                jobs.append(json.dumps(job))
    assert {launch["kind"] for launch in model.launches} >= {"conv", "mat_mul"}
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, "-c", _PTX], input="\n".join(jobs), capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    counts = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("[")]
    kinds = {launch["kernel"]: launch["kind"] for launch in model.launches}
    vectorized = {kinds[kernel] for kernel, hinted, v4, _ in counts if hinted and v4 > 0}
    # the 1x1 conv and the GEMM; the 3x3 conv's input loads are gathers (cp.async per element)
    assert vectorized >= {"conv", "mat_mul"}, counts
    assert all(v4 == 0 for _, hinted, v4, _ in counts if not hinted), counts  # what the hints buy


def test_misaligned_input_view_is_copied_and_right(tmp_path):
    """A user tensor whose data is not 16-byte aligned (a view one element into a buffer)
    breaks what the cubins assume: the runtime copies it, and the numbers are right."""
    import torch

    from models import ort_run
    from tritonnx.runtime import ALIGNMENT, aligned

    proto = _small_cnn()
    model = tritonnx.compile(proto, tmp_path / "art", targets=("sm_90",))
    x = np.random.default_rng(1).standard_normal((4, 8, 16, 16)).astype(np.float32)
    storage = torch.empty(x.size + 1)
    view = storage[1:].view(x.shape)
    view.copy_(torch.from_numpy(x))
    assert view.data_ptr() % ALIGNMENT != 0
    copy = aligned(view)
    assert copy.data_ptr() % ALIGNMENT == 0 and torch.equal(copy, view)
    assert aligned(copy) is copy  # an aligned tensor is used as it is
    got = model.run({"x": view})["y"].numpy()
    np.testing.assert_allclose(got, ort_run(proto, {"x": x})[0], rtol=1e-4, atol=1e-4)
