"""Any import order of torch, triton, transformers and tritonnx works in one process: the
runtime chooses Triton's interpreter per kernel, not through TRITON_INTERPRET set before
triton.language is imported. Each case runs in a fresh interpreter without that variable."""

import os
import subprocess
import sys

import pytest

_SCRIPT = """
import sys
{imports}
import numpy as np
import onnxruntime
import torch

net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                          torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
x = torch.randn(2, 3, 16, 16)
torch.onnx.export(net, (x,), {path!r}, dynamo=False, input_names=["x"], output_names=["y"])
import tritonnx
got = tritonnx.compile({path!r}).run({{"x": x.numpy()}})["y"]
want = onnxruntime.InferenceSession({path!r}).run(None, {{"x": x.numpy()}})[0]
assert "triton.language" in sys.modules
print(float(np.abs(got - want).max() / np.abs(want).max()))
"""


@pytest.mark.parametrize(
    "imports",
    [
        "import triton.language",  # Triton first, in compiled mode
        "import torch",  # torch.onnx.export first, tritonnx after
        "import transformers, triton, tritonnx",
        "import tritonnx.runtime, triton.language",
    ],
)
def test_import_order_then_export_compile_and_run(imports, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITONNX_CACHE_DIR"] = str(tmp_path / "cache")
    script = _SCRIPT.format(imports=imports, path=str(tmp_path / "net.onnx"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-4
