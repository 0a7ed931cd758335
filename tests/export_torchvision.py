"""Exports torchvision models to ONNX for tests/test_real_models.py.

Run with the python of the separate torchvision environment (torch==2.14.1
torchvision==0.29.1 onnx==1.23.2; PyPI's torchvision does not import with the CPU torch
wheel of the main environment, see DESIGN.md):

    .venv-torchvision/bin/python tests/export_torchvision.py OUT_DIR [NAME ...]

Writes OUT_DIR/<name>.onnx for each name (default: all of MODELS): untrained weights
(weights=None) after torch.manual_seed(0), eval mode, the TorchScript exporter
(dynamo=False) at opset 17, input `x` float32 [batch, 3, H, W] and output `y` float32
[batch, 1000] with `batch` a symbolic dimension. tests/torchvision_models.py keys its cache
on this file's SHA-256, so any change here re-exports.
"""

import importlib.metadata
import os
import sys

# the environment this script runs in; tests/torchvision_models.py installs exactly these
# (read from here with ast, so this list is part of the cache key) and .ci/run does too
REQUIREMENTS = ("torch==2.14.1", "torchvision==0.29.1", "onnx==1.23.2")


def check_requirements() -> None:
    """Raises SystemExit naming each package of REQUIREMENTS whose installed version differs."""
    wrong = []
    for req in REQUIREMENTS:
        name, want = req.split("==")
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            have = "not installed"
        if have.split("+")[0] != want:
            wrong.append(f"{name} {have} (want {want})")
    if wrong:
        raise SystemExit(f"{sys.executable}: wrong environment for {__file__}: " + ", ".join(wrong))


if __name__ == "__main__":
    check_requirements()

import torch  # noqa: E402
import torchvision  # noqa: E402

# name: (constructor keyword arguments, input height and width)
MODELS = {
    "squeezenet1_1": ({}, 224),
    "inception_v3": ({"aux_logits": False, "init_weights": True}, 299),
}


def export(name: str, out_dir: str) -> str:
    """Exports one model of MODELS to out_dir/<name>.onnx (written beside, then renamed) and returns the path."""
    kwargs, size = MODELS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    x = torch.rand(1, 3, size, size)
    path = os.path.join(out_dir, f"{name}.onnx")
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            model,
            (x,),
            tmp,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, names = argv[0], argv[1:] or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model(s) {unknown}; known: {list(MODELS)}", file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        print(export(name, out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
