"""Every generated kernel compiles ahead of time to sm_90 cubin, without a GPU."""
import json

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
