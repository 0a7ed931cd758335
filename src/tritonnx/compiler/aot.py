"""Ahead-of-time compilation of generated kernels to cubin, with no GPU needed.

Runs in worker processes (`python -m tritonnx.compiler.aot JOBS.json`): `triton.jit`
decides between compiling and interpreting when a function is decorated, so a process
that runs kernels through the CPU interpreter (TRITON_INTERPRET=1) cannot also compile
them. Each kernel and target gets `<kernel>.<target>.cubin` and Triton's metadata for it,
`<kernel>.<target>.json`, which `tritonnx.runtime.cubin` needs to launch the binary.
Each job is {"file", "kernel", "signature", "num_warps", "num_stages", "targets"}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tritonnx.errors import CompileError


def _compile_jobs(jobs: list[dict]) -> None:
    import importlib.util

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    for job in jobs:
        path = Path(job["file"])
        spec = importlib.util.spec_from_file_location(f"tritonnx_aot_{job['kernel']}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, job["kernel"])
        signature = dict(zip(fn.arg_names, job["signature"]))
        for target in job["targets"]:
            compiled = triton.compile(ASTSource(fn, signature, {}),
                                      target=GPUTarget("cuda", int(target.split("_")[1]), 32),
                                      options={"num_warps": job["num_warps"], "num_stages": job["num_stages"]})
            path.with_name(f"{job['kernel']}.{target}.cubin").write_bytes(compiled.asm["cubin"])
            meta = next(p for n, p in compiled.metadata_group.items() if n.endswith(".json"))
            path.with_name(f"{job['kernel']}.{target}.json").write_text(Path(meta).read_text())
            print(f"{job['kernel']} -> {target}", flush=True)


def compile_kernels(jobs: list[dict], workers: int | None = None, on_kernel=None) -> None:
    """Compiles `jobs` in parallel worker processes. Raises CompileError naming the kernel
    and Triton's message when one fails."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, said out loud
    procs = []
    for i in range(workers):
        chunk = jobs[i::workers]
        procs.append(subprocess.Popen([sys.executable, "-m", "tritonnx.compiler.aot", json.dumps(chunk)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    errors = []
    for p in procs:
        for line in p.stdout:
            if on_kernel:
                on_kernel(line.strip())
        err = p.stderr.read()
        if p.wait() != 0:
            errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit code {p.returncode}")
    if errors:
        raise CompileError(f"ahead-of-time compilation to cubin failed: {errors[0]}")


if __name__ == "__main__":
    _compile_jobs(json.loads(sys.argv[1]))
