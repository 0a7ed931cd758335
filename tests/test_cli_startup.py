"""`import tritonnx` and `tritonnx --help` load neither MLIR nor torch (the names are
imported when first used); `--version` prints the installed version."""

import subprocess
import sys
from importlib.metadata import version


def test_help_imports_no_mlir_torch_or_triton():
    code = (
        "import sys, contextlib, io\n"
        "from tritonnx.compiler import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "print(sorted(m for m in ('mlir', 'torch', 'triton', 'onnx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version():
    out = subprocess.run(
        [sys.executable, "-m", "tritonnx.compiler.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"tritonnx {version('tritonnx')}"


def test_lazy_names_resolve():
    import tritonnx

    assert tritonnx.InferenceSession.__module__ == "tritonnx.session"
    assert tritonnx.compile.__module__ == "tritonnx.compiler.driver"
    assert "load" in dir(tritonnx)


def test_doctor_says_what_runs_and_why(capsys):
    import torch

    from tritonnx.compiler import cli

    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"torch     {torch.__version__}" in out and "triton" in out
    if torch.cuda.is_available():
        assert "compute capability" in out
    else:
        assert "Triton's CPU interpreter" in out and "none usable:" in out
