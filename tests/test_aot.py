"""Every generated kernel compiles ahead of time to sm_90 cubin, without a GPU."""
import json
import os
import subprocess
import sys

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
    code = ("import sys; from pathlib import Path; from tritonnx.runtime import cubin; "
            f"k = cubin.load(Path({str(out / 'kernels')!r}), {launch['kernel']!r}, 'sm_80', {launch['signature']!r}); "
            "assert k.kernel[:4] == b'\\x7fELF', k.kernel[:4]; "
            f"assert k.metadata.target.arch == 80 and k.metadata.num_warps == {launch['num_warps']}; print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
