"""IREE reference figures for an ONNX model: dispatch count and compile time.

IREE is not a dependency of tritonnx.  It lives in its own environment,
``bench/.venv-iree`` (made by ``bash bench/setup_iree.sh``), and this module
only drives its command-line tools through ``subprocess``, so the caller can
run in the project venv.

Pipeline, for one model, in ``workdir``:

1. ``iree-import-onnx model.onnx -o model.mlir`` (timed: ``import_s``).
   Models whose default-domain opset is below ``MIN_OPSET`` are upgraded by
   the importer (``--opset-version 17``): IREE's ONNX front end does not lower
   some old-opset forms (opset-9 ``MaxPool`` fails to legalize, for one).
2. ``iree-compile --iree-hal-target-device=cuda --iree-cuda-target=sm_80
   model.mlir -o model.vmfb`` (timed: ``compile_s``, wall seconds of this
   process alone).  No GPU is needed to compile.

What is counted
---------------
The compile also passes ``--iree-scheduling-dump-statistics-format=json``,
which makes IREE's stream phase write whole-program scheduling statistics
(after fusion, dispatch formation, executable deduplication and stream
scheduling, i.e. on the program the runtime will execute).  From them:

* ``dispatches``: ``execution.dispatch-count``, the number of
  ``stream.cmd.dispatch`` ops in the program, i.e. kernel launch sites.  Two
  sites that launch the same executable count twice.  Each site becomes
  exactly one ``hal.command_buffer.dispatch`` in the command buffer that the
  entry function submits once per call (checked with ``--compile-to=hal``:
  bvlc_alexnet 16 ``flow.dispatch`` = 16 stream = 16 HAL dispatches;
  squeezenet, resnet50 and densenet121 (random weights) 39, 58 and 185, all of
  them in the one recorded command buffer, none in initializers or loops).
  The count is static, so a site inside a loop (ONNX Loop/If) would count
  once; the CNNs benchmarked here have no control flow, so sites = launches
  per inference.
* ``executables``: ``executable.executable-count``, the number of distinct
  kernels after deduplication (``executables <= dispatches``).
* ``fills``: ``execution.fill-count``, buffer fills (on CUDA a memset, not a
  kernel); reported apart and not included in ``dispatches``.

The statistics are a byproduct of the timed compile, so counting costs no
extra compile.  They are written before code generation, so a model that
fails later (in GPU codegen) still gets them; ``dispatches`` is then ``None``
anyway, because no program came out of it.

All times are wall-clock seconds.

Command line (table for each model, as shipped and with random weights):
    .venv/bin/python bench/iree.py MODEL.onnx... [--workdir DIR]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = BENCH_DIR / ".venv-iree" / "bin"
IMPORT_ONNX = VENV_BIN / "iree-import-onnx"
IREE_COMPILE = VENV_BIN / "iree-compile"

#: Models with an older default-domain opset are upgraded to this on import.
MIN_OPSET = 17

#: Give up on one tool after this many seconds.
TIMEOUT_S = 1800


def available() -> bool:
    """True when bench/.venv-iree holds both IREE tools."""
    return IMPORT_ONNX.is_file() and IREE_COMPILE.is_file()


def version() -> str:
    """The installed iree-base-compiler version (e.g. "3.13.0"), or ""."""
    for dist in (BENCH_DIR / ".venv-iree" / "lib").glob("python*/site-packages/iree_base_compiler-*.dist-info"):
        return dist.name[len("iree_base_compiler-") : -len(".dist-info")]
    return ""


def _opset(onnx_path: str) -> int | None:
    """The model's default-domain opset, or None if it can't be read."""
    try:
        import onnx

        model = onnx.load(onnx_path, load_external_data=False)
    except Exception:  # noqa: BLE001 - no onnx, no file or a bad protobuf: the opset is unknown
        return None
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return None


def _error_line(stderr: str) -> str:
    """The meaningful line of a tool's stderr.

    IREE prints the root cause as the first ``error:`` line, then notes, IR
    dumps and wrapper errors; Python tools end with the exception line.  So:
    the first ``error:`` line without its ``file:line:col:`` prefix, else the
    last non-empty line.  Cut to 300 characters.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln[ln.index("error:") :][:300]
    return lines[-1][:300] if lines else "failed with no message"


def _run(cmd: list[str]) -> tuple[float, str | None]:
    """Run cmd; return (wall seconds, error line or None)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"timed out after {TIMEOUT_S} s"
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return seconds, _error_line(proc.stderr)
    return seconds, None


def iree_compile(onnx_path: str, workdir: str, target: str = "sm_80") -> dict:
    """Import and compile an ONNX model with IREE for CUDA; never raises.

    Writes model.mlir, model.vmfb and stats.json into workdir.  Returns
    {"dispatches": int|None, "executables": int|None, "fills": int|None,
     "compile_s": float|None, "import_s": float|None, "error": str|None,
     "version": str}; see the module docstring for what is counted.
    Times are wall seconds; a step that did not run has None.
    """
    result = {
        "dispatches": None,
        "executables": None,
        "fills": None,
        "compile_s": None,
        "import_s": None,
        "error": None,
        "version": version(),
    }
    if not available():
        result["error"] = "IREE not installed: run bash bench/setup_iree.sh"
        return result
    try:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        mlir, vmfb, stats = (work / "model.mlir", work / "model.vmfb", work / "stats.json")
        for old in (mlir, vmfb, stats):
            old.unlink(missing_ok=True)

        cmd = [str(IMPORT_ONNX), str(onnx_path), "-o", str(mlir)]
        opset = _opset(onnx_path)
        if opset is not None and opset < MIN_OPSET:
            cmd += ["--opset-version", str(MIN_OPSET)]
        result["import_s"], error = _run(cmd)
        if error:
            result["error"] = "import: " + error
            return result

        result["compile_s"], error = _run(
            [
                str(IREE_COMPILE),
                str(mlir),
                "-o",
                str(vmfb),
                "--iree-hal-target-device=cuda",
                f"--iree-cuda-target={target}",
                "--iree-scheduling-dump-statistics-format=json",
                f"--iree-scheduling-dump-statistics-file={stats}",
            ]
        )
        if error:
            result["error"] = "compile: " + error
            return result

        counts = json.loads(stats.read_text())["stream-aggregate"]
        result["dispatches"] = counts["execution"]["dispatch-count"]
        result["fills"] = counts["execution"]["fill-count"]
        result["executables"] = counts["executable"]["executable-count"]
    except Exception as exc:  # noqa: BLE001 - the bench must go on whatever happens here
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def randomize(onnx_in: str, onnx_out: str, seed: int = 0) -> None:
    """Copy an ONNX model with seeded random weights.

    The ONNX "light" models ship every weight as 0.02, which IREE folds into
    splat constants (and then fails on some of them).  This gives each weight
    values drawn from N(0, 1) / sqrt(fan_in), fan_in being the product of all
    dimensions but the first (1 for scalars and vectors), so a Conv/Gemm
    weight [out, in, ...] gets the usual 1/sqrt(in * kh * kw) scale.

    What is replaced:
    * every float initializer;
    * every ConstantOfShape whose shape is an initializer: the light models
      store most weights that way (a shape plus a fill value), so the node is
      dropped and its output becomes a random float initializer.
    BatchNormalization variances (input 4) are made positive with abs().
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    model = onnx.load(onnx_in)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    variances = {node.input[4] for node in graph.node if node.op_type == "BatchNormalization" and len(node.input) > 4}

    def random_tensor(name: str, shape: tuple[int, ...], dtype) -> onnx.TensorProto:
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        values = rng.standard_normal(shape) / math.sqrt(fan_in)
        if name in variances:
            values = np.abs(values)
        return numpy_helper.from_array(values.astype(dtype), name)

    for i, init in enumerate(graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype.kind == "f":
            graph.initializer[i].CopyFrom(random_tensor(init.name, array.shape, array.dtype))

    kept = []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
            dtype = np.dtype(np.float32)
            for attr in node.attribute:
                if attr.name == "value":
                    dtype = numpy_helper.to_array(attr.t).dtype
            if dtype.kind == "f":
                tensor = random_tensor(node.output[0], shape, dtype)
                graph.initializer.append(tensor)
                # IR version 3 wants every initializer listed as a graph input.
                graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, shape))
                continue
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)

    # Drop initializers nothing reads any more (the shapes of removed nodes),
    # with their graph inputs, and value_info now held by initializers.
    used = {name for node in graph.node for name in node.input}
    used |= {out.name for out in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    names = {init.name for init in graph.initializer}
    for vi in [v for v in graph.input if v.name in inits and v.name not in names]:
        graph.input.remove(vi)
    for vi in [v for v in graph.value_info if v.name in names]:
        graph.value_info.remove(vi)

    onnx.save(model, onnx_out)


def _main() -> None:
    """Print a table for the ONNX files given, as shipped and randomized.

    python bench/iree.py MODEL.onnx... [--workdir DIR]
    """
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--target", default="sm_80")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="iree-bench-"))
    root.mkdir(parents=True, exist_ok=True)

    print(f"IREE {version()}, target {args.target}, workdir {root}")
    print(f"{'model':<22} {'weights':<8} {'disp':>5} {'exec':>5} {'fills':>5} {'compile_s':>9} {'import_s':>8}  error")

    def cell(r, key, width, spec=""):
        value = r[key]
        return f"{'-' if value is None else format(value, spec):>{width}}"

    for path in args.models:
        name = Path(path).stem
        random_path = root / f"{name}.random.onnx"
        randomize(path, str(random_path))
        for kind, model in (("shipped", path), ("random", str(random_path))):
            r = iree_compile(model, str(root / name / kind), args.target)
            print(
                f"{name:<22} {kind:<8} {cell(r, 'dispatches', 5)} "
                f"{cell(r, 'executables', 5)} {cell(r, 'fills', 5)} "
                f"{cell(r, 'compile_s', 9, '.2f')} {cell(r, 'import_s', 8, '.2f')}  "
                f"{r['error'] or ''}",
                flush=True,
            )
        os.remove(random_path)


if __name__ == "__main__":
    _main()
