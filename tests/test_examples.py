"""The README's first command, as a new user runs it from a clean clone: its last step
(`python examples/ocr.py`, after the installs that .ci/run has done) reads the rendered
line correctly, as onnxruntime does, within 1e-4. Then the same dynamic compile of the PP-OCR
recognizer (served by the session's compile cache, which the command filled) runs a line of
another width against onnxruntime: two widths on one artifact."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _first_command() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```\n(.*?)\n```", readme, re.DOTALL)
    assert block, "README.md has no Quick start command"
    return block.group(1).strip()


@pytest.mark.slow
def test_readme_first_command_reads_the_rendered_text():
    command = _first_command()
    assert "rapidocr-onnxruntime" in command  # the installs .ci/run has made
    last = command.split("&&")[-1].split()
    assert last[0] == "python", command
    out = subprocess.run(
        [sys.executable, *last[1:]], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ), timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    rendered = lines["rendered"].strip().split(" (")[0]
    assert lines["tritonnx"].strip() == lines["onnxruntime"].strip() == rendered, out.stdout
    error = re.search(r"max abs difference of the \S+ probabilities: (\S+)", out.stdout)
    assert error and float(error.group(1)) < 1e-4, out.stdout
    # the recognizer as shipped (batch, height and width symbolic), at another width: the
    # command's compile, from the cache (the same TRITONNX_CACHE_DIR as the command's)
    import tritonnx
    from test_real_models import REC, _check, _image, ppocr

    proto = ppocr(REC)
    model = tritonnx.compile(proto)
    assert model.cached and model.dynamic
    _check(model, proto, _image([1, 3, 48, 96], seed=96))
