"""The README's first command, as a new user runs it from a clean clone: its last step
(`python examples/ocr.py`, after the installs that .ci/run has done) reads the rendered
line correctly, as onnxruntime does, within 1e-4. The PP-OCR recognizer compiles with
default options, as `test_real_models.py::test_ppocr_rec_dynamic` does: whichever runs
second is served by the session's compile cache."""

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
@pytest.mark.xdist_group("ppocr_rec")  # with test_real_models' test_ppocr_rec_dynamic: one compile
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
