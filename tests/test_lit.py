"""Runs the lit + FileCheck tests of every pass (tests/lit/*.mlir) through tritonnx-opt."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_lit():
    here = os.path.dirname(__file__)
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "lit"), "-q", os.path.join(here, "lit")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
