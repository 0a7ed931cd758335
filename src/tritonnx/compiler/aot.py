"""Ahead-of-time compilation of generated kernels to cubin, with no GPU needed.

Runs in worker processes (`python -m tritonnx.compiler.aot --serve`, one job per line of
stdin): `triton.jit` decides between compiling and interpreting when a function is
decorated, so a process that runs kernels through the CPU interpreter (TRITON_INTERPRET=1)
cannot also compile them. Each kernel and target gets `<kernel>.<target>.cubin` and
Triton's metadata for it, `<kernel>.<target>.json`, which `tritonnx.runtime.cubin` needs to launch the binary.
Each job is {"file", "kernel", "signature", "constexprs", "num_warps", "num_stages", "targets",
"divisibility_16"}: the binary is of the launch's block sizes (its constexpr parameters) and
assumes the arguments listed in "divisibility_16" (every pointer: the runtime guarantees
16-byte alignment, see `tritonnx.runtime.CompiledModel`) divisible by 16.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Protocol, cast

from tritonnx.errors import CompileError
from tritonnx.runtime.cubin import attrs
from tritonnx.target import TARGETS

MAX_WORKERS = 8  # each holds Triton and its LLVM in memory
MARK = "@@tritonnx "  # prefix of the lines a worker answers on (Triton may print too)


def compile_one(job: dict, target: str):
    """Triton's CompiledKernel of `job` for `target` (asm: ttir, ttgir, llir, ptx, cubin);
    in a process where TRITON_INTERPRET is not set."""
    import importlib.util

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    path = Path(job["file"])
    spec = importlib.util.spec_from_file_location(f"tritonnx_aot_{job['kernel']}", path)
    assert spec is not None and spec.loader is not None  # a .py path always has a source loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, job["kernel"])
    signature = dict(zip(fn.arg_names, job["signature"]))
    return triton.compile(
        ASTSource(fn, signature, job.get("constexprs", {}), attrs(job.get("divisibility_16", ()))),
        target=GPUTarget("cuda", TARGETS[target].capability, 32),
        options={"num_warps": job["num_warps"], "num_stages": job["num_stages"]},
    )


def _compile_job(job: dict) -> None:
    path = Path(job["file"])
    for target in job["targets"]:
        compiled = compile_one(job, target)
        path.with_name(f"{job['kernel']}.{target}.cubin").write_bytes(compiled.asm["cubin"])
        meta = next(p for n, p in compiled.metadata_group.items() if n.endswith(".json"))
        path.with_name(f"{job['kernel']}.{target}.json").write_text(Path(meta).read_text())


def _serve() -> None:
    """A worker: imports Triton, then compiles the job on each line of stdin and answers
    one MARK line per job ({"kernel"} or {"kernel", "error"})."""
    import triton  # noqa: F401  (imported while the parent still runs its passes)

    for line in sys.stdin:
        job = json.loads(line)
        try:
            _compile_job(job)
            answer = {"kernel": job["kernel"]}
        except Exception as e:  # noqa: BLE001 - reported by the parent as a CompileError naming the kernel
            text = str(e).strip()
            answer = {"kernel": job["kernel"], "error": text.splitlines()[-1] if text else type(e).__name__}
        print(MARK + json.dumps(answer), flush=True)
    os._exit(0)  # every answer is out; skip the interpreter's teardown of Triton and torch (seconds)


class KernelProgress(Protocol):
    """What `Workers.run` reports to, one call at a time: `add(n)` for its n jobs before
    any begins, then `start(label)` when a worker takes a job and `done(label)` when the
    job is compiled; label: "KERNEL (sm_90, ...)"."""

    def add(self, jobs: int) -> None: ...
    def start(self, label: str) -> None: ...
    def done(self, label: str) -> None: ...


class Workers:
    """Processes that compile kernels to cubin, one job at a time each, longest first.

    Start them early (`tritonnx.compile` does so before its passes run when targets are
    given): each imports Triton meanwhile. Use as a context manager, or `close()`."""

    def __init__(self, count: int | None = None):
        self.count = max(1, count or min(os.cpu_count() or 1, MAX_WORKERS))
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, said out loud
        self.procs = []
        for _ in range(self.count):
            log = tempfile.TemporaryFile(mode="w+")
            proc = subprocess.Popen(
                [sys.executable, "-m", "tritonnx.compiler.aot", "--serve"],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
            self.procs.append((proc, log))

    def run(self, jobs: list[dict], progress: KernelProgress | None = None) -> None:
        """Compiles `jobs` (largest kernel source first, so the workers finish together),
        reporting to `progress`. Raises CompileError naming the kernel and Triton's message
        when one fails."""
        if progress is not None:
            progress.add(len(jobs))
        pending: queue.Queue[dict] = queue.Queue()
        for job in sorted(jobs, key=lambda j: -Path(j["file"]).stat().st_size):
            pending.put(job)
        errors: list[str] = []
        lock = threading.Lock()

        def feed(proc, log):
            while not errors:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                label = f"{job['kernel']} ({', '.join(job['targets'])})"
                if progress is not None:
                    with lock:
                        progress.start(label)
                try:
                    proc.stdin.write(json.dumps(job) + "\n")
                    proc.stdin.flush()
                    line = ""
                    while not line.startswith(MARK):
                        line = proc.stdout.readline()
                        if not line:
                            raise OSError("worker exited")
                except OSError:
                    log.seek(0)
                    tail = log.read().strip().splitlines()
                    errors.append(f"{job['kernel']}: the compiler process died ({tail[-1] if tail else 'no message'})")
                    return
                answer = json.loads(line[len(MARK) :])
                if "error" in answer:
                    errors.append(f"{answer['kernel']}: {answer['error']}")
                    return
                if progress is not None:
                    with lock:
                        progress.done(label)

        threads = [threading.Thread(target=feed, args=pl) for pl in self.procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise CompileError(f"ahead-of-time compilation to cubin failed: {errors[0]}")

    def close(self) -> None:
        for proc, log in self.procs:
            try:
                cast(IO[str], proc.stdin).close()  # started with stdin=PIPE
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compile_kernels(
    jobs: list[dict], workers: int | Workers | None = None, progress: KernelProgress | None = None
) -> None:
    """Compiles `jobs` in parallel worker processes (a `Workers` pool, or a new one of
    `workers` processes), reporting to `progress`. Raises CompileError naming the kernel
    and Triton's message when one fails."""
    if isinstance(workers, Workers):
        workers.run(jobs, progress)
        return
    with Workers(min(workers or os.cpu_count() or 1, max(1, len(jobs)))) as pool:
        pool.run(jobs, progress)


if __name__ == "__main__":
    _serve()
