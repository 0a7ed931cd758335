"""torchvision models as ONNX files, exported in a separate environment and cached.

PyPI's torchvision needs CUDA torch and does not import with the main environment's CPU
wheel (DESIGN.md), so `tests/export_torchvision.py` runs under the python of its own
virtual environment: `$TRITONNX_TORCHVISION_VENV`, default `<repo>/.venv-torchvision`
(gitignored; .ci/run creates it). When that environment is missing or holds other versions
than the script's REQUIREMENTS, `exported()` creates it or installs them (about 6.4 GB,
minutes). The exported files are cached under
`$XDG_CACHE_HOME/tritonnx-tests/torchvision/<sha256 of the export script>/` (default
`~/.cache/...`), so an edit of the script exports again and nothing else does.

Nothing is skipped: a failure to create the environment or to export fails the test
with the command and the end of its output.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "export_torchvision.py"


def venv_dir() -> Path:
    """The torchvision environment's directory: $TRITONNX_TORCHVISION_VENV or <repo>/.venv-torchvision."""
    return Path(os.environ.get("TRITONNX_TORCHVISION_VENV") or REPO / ".venv-torchvision")


def script_hash() -> str:
    """SHA-256 (hex) of tests/export_torchvision.py: the cache key of its exports."""
    return hashlib.sha256(SCRIPT.read_bytes()).hexdigest()


def cache_dir() -> Path:
    """Where the exports of this version of the script live (may not exist yet)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tritonnx-tests" / "torchvision" / script_hash()


def requirements() -> tuple[str, ...]:
    """REQUIREMENTS of the export script, read without importing it (it imports torch)."""
    for node in ast.parse(SCRIPT.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "REQUIREMENTS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"{SCRIPT} defines no REQUIREMENTS")


def _env() -> dict:
    # the torchvision environment must not see this checkout's sources or the main venv
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return env


def _run(cmd: list[str], what: str, timeout: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"{what}: `{' '.join(cmd)}` failed: {e}", pytrace=False)
    if done.returncode:
        tail = (done.stdout + done.stderr)[-3000:]
        pytest.fail(f"{what}: `{' '.join(cmd)}` exited with {done.returncode}:\n{tail}", pytrace=False)
    return done.stdout


def _versions_match(python: Path) -> bool:
    code = (
        "import importlib.metadata as m, sys\n"
        "def v(n):\n"
        "    try: return m.version(n).split('+')[0]\n"
        "    except m.PackageNotFoundError: return None\n"
        f"sys.exit(0 if all(v(r.split('==')[0]) == r.split('==')[1] for r in {requirements()!r}) else 1)\n"
    )
    return subprocess.run([str(python), "-c", code], env=_env(), capture_output=True).returncode == 0


def python() -> Path:
    """The torchvision environment's python, creating the environment or installing the
    pinned versions into it when needed. Fails the calling test when that does not work."""
    venv = venv_dir()
    py = venv / "bin" / "python"
    if not py.exists():
        _run([sys.executable, "-m", "venv", str(venv)], f"creating the torchvision environment {venv}", 300)
    if not _versions_match(py):
        _run(
            [str(py), "-m", "pip", "install", "-q", *requirements()],
            f"installing {' '.join(requirements())} into {venv}",
            3600,
        )
    return py


def exported(name: str) -> str:
    """Path of `<name>.onnx` exported by tests/export_torchvision.py (a key of its MODELS),
    from the cache or exported now (written to a temporary directory beside the cache
    entry, then renamed into it, so a concurrent or interrupted run leaves no half file)."""
    path = cache_dir() / f"{name}.onnx"
    if path.exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    py = python()
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        _run([str(py), str(SCRIPT), tmp, name], f"exporting torchvision's {name} with {py}", 1800)
        os.replace(Path(tmp) / f"{name}.onnx", path)
    return str(path)
