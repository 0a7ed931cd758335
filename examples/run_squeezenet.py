"""Compile the SqueezeNet in this folder with the Python API, run it, and compare with
onnxruntime. Run from the repository root: `python examples/run_squeezenet.py`."""

from pathlib import Path

import numpy as np
import onnxruntime as ort

import tritonnx

here = Path(__file__).parent
model = tritonnx.compile(here / "squeezenet.onnx", "out/squeezenet-py", dump_ir="out/squeezenet-py-ir")
print(f"{len(model.launches)} kernel launches:")
for launch in model.launches[:5]:
    print(f"  {launch['kernel']} {launch['kind']:<9} grid {launch['grid']} nodes {', '.join(launch['nodes'])}")
print("  ...")

x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
y = model(x)  # or model.run({"data_0": x})
ref = ort.InferenceSession(str(here / "squeezenet.onnx")).run(None, {"data_0": x})[0]
print(f"output {y.shape}, max abs difference from onnxruntime {np.abs(y - ref).max():.3g}")
