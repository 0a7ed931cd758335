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
