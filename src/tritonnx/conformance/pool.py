"""A pool of worker processes for the conformance runner that survives its tests.

Each worker imports tritonnx once, says it is ready, then runs one `Case` at a time sent
over a pipe. The parent kills a worker whose test runs past its time limit and notices a
worker that died (a segfault, an abort, os._exit); either way the test is recorded as a
`crash` and a fresh worker takes the next test. Workers are also replaced after a number
of tests, so that memory a test leaks does not pile up.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from multiprocessing.connection import wait

from tritonnx.conformance.cases import Case, Result, run_case

STARTUP_LIMIT_S = 300  # a worker that cannot import tritonnx in this long aborts the run


def _worker_main(conn, quiet: bool, scratch: str) -> None:
    """Worker process: run the cases the parent sends until it sends None. Temporary files
    go under `scratch`, which the parent removes even when it has to kill the worker."""
    tempfile.tempdir = scratch
    if quiet:  # kernels, passes and numpy may print; keep the parent's log readable
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    import tritonnx.conformance.onnx_backend  # noqa: F401 - pay the import before the first clock starts

    conn.send(("ready", None))
    while True:
        try:
            case = conn.recv()
        except EOFError:
            return
        if case is None:
            return
        conn.send(("result", run_case(case)))


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"worker died from signal {signal.Signals(-code).name}"
        except ValueError:
            return f"worker died from signal {-code}"
    return f"worker exited with status {code}"


class _Worker:
    """One worker process and the test it is running (if any)."""

    def __init__(self, ctx, quiet: bool):
        self.conn, child = ctx.Pipe()
        self.scratch = tempfile.mkdtemp(prefix="tritonnx-conformance-")
        self.proc = ctx.Process(target=_worker_main, args=(child, quiet, self.scratch), daemon=True)
        self.proc.start()
        child.close()
        self.born = time.monotonic()
        self.ready = False
        self.case: Case | None = None
        self.limit = 0.0
        self.started = 0.0
        self.done = 0

    def assign(self, case: Case, limit: float) -> bool:
        """Sends a case; False if the worker is already gone."""
        try:
            self.conn.send(case)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False
        self.case, self.limit, self.started = case, limit, time.monotonic()
        return True

    def deadline(self) -> float:
        """When the running test times out, or a starting worker is given up on."""
        if self.case is not None:
            return self.started + self.limit
        return float("inf") if self.ready else self.born + STARTUP_LIMIT_S

    def stop(self) -> None:
        """Asks an idle worker to exit; kills it if it does not within a few seconds."""
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(5)
        self.kill()

    def kill(self) -> None:
        """Ends the worker (if it still runs) and removes its temporary files."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _crash(case: Case, reason: str, seconds: float) -> Result:
    return Result(case.name, case.op_type, case.kind, "crash", reason, round(seconds, 3))


def run_cases(
    cases: list[Case],
    jobs: int,
    timeout: float,
    model_timeout: float | None = None,
    on_result=None,
    recycle: int = 100,
    quiet: bool = True,
) -> list[Result]:
    """Runs `cases` on `jobs` worker processes; returns their results in `cases` order.

    timeout: seconds per test (compile and every data set), from when the worker gets it;
    model_timeout: the same for "real" (light model) tests, default `timeout`.
    on_result(number done, Result) is called as each test finishes.
    recycle: tests a worker runs before it is replaced.
    """
    ctx = multiprocessing.get_context("spawn")
    pending: deque[Case] = deque(sorted(cases, key=lambda c: c.kind != "real"))  # longest first
    results: dict[str, Result] = {}
    workers: list[_Worker] = []

    def record(result: Result) -> None:
        results[result.name] = result
        if on_result:
            on_result(len(results), result)

    def retire(w: _Worker, reason: str | None) -> None:
        if w.case is not None and reason is not None:
            record(_crash(w.case, reason, time.monotonic() - w.started))
        w.kill()
        workers.remove(w)

    try:
        while pending or any(w.case for w in workers):
            busy = sum(w.case is not None for w in workers)
            while len(workers) < min(jobs, len(pending) + busy):
                workers.append(_Worker(ctx, quiet))
            for w in workers:
                if w.ready and w.case is None and pending:
                    case = pending.popleft()
                    limit = (model_timeout or timeout) if case.kind == "real" else timeout
                    if not w.assign(case, limit):
                        pending.appendleft(case)
            now = time.monotonic()
            soonest = min(w.deadline() for w in workers)
            wait([w.conn for w in workers] + [w.proc.sentinel for w in workers], min(60.0, max(0.05, soonest - now)))
            for w in list(workers):
                if w.conn.poll():
                    try:
                        kind, payload = w.conn.recv()
                    except (EOFError, OSError):
                        w.proc.join(5)
                        if not w.ready:
                            raise RuntimeError(
                                f"a conformance worker failed to start ({_death(w.proc.exitcode)})."
                            ) from None
                        retire(w, _death(w.proc.exitcode))
                        continue
                    if kind == "ready":
                        w.ready = True
                    else:
                        record(payload)
                        w.case, w.done = None, w.done + 1
                        if w.done >= recycle:
                            w.stop()
                            workers.remove(w)
                elif not w.proc.is_alive():
                    if not w.ready and w.case is None:
                        raise RuntimeError(f"a conformance worker failed to start ({_death(w.proc.exitcode)}).")
                    retire(w, _death(w.proc.exitcode))
                elif time.monotonic() > w.deadline():
                    if w.case is None:
                        raise RuntimeError(f"a conformance worker did not start within {STARTUP_LIMIT_S}s.")
                    retire(w, f"timed out after {w.limit:g}s")
    finally:
        for w in workers:
            w.kill()
    return [results[c.name] for c in cases if c.name in results]
