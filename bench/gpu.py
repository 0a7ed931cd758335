"""GPU latency of tritonnx against PyTorch eager and torch.compile.

What it measures: for each network -- ResNet-50 at batch 1 and 32 (float32 [N,3,224,224])
and a BERT-base encoder at batch 1, sequence 128 (int64 input_ids and attention_mask) --
the median latency in milliseconds of one forward pass with

  * PyTorch eager (`torch.inference_mode()`),
  * `torch.compile(model)` (default mode, static shapes),
  * tritonnx: the network exported to ONNX by this bench and compiled with
    `tritonnx.compile(..., targets=("sm_90",))` on a compute capability 9.0 device, else
    `("sm_80",)` (a device of another capability runs Triton's JIT build of the kernels),
    run twice side by side: replaying its CUDA graph (the default) and with
    `cuda_graphs=False`, one Python launch per kernel,

and prints the ratios tritonnx/eager and tritonnx/torch.compile (below 1: tritonnx is
faster), with the largest relative error of each output against eager.

How: the networks are built in plain torch (`bench/torch_models.py`, random weights from
torch.manual_seed(0), eval mode) and exported with `torch.onnx.export(opset_version=17)`,
static shapes, into a work directory. Every variant takes the same inputs, already on the
GPU. Each is run `--warmup` times (this also triggers torch.compile's compile and
Triton's JIT), then `--iters` times, each run bracketed by a pair of
`torch.cuda.Event(enable_timing=True)` recorded on the current stream and synchronized;
the median of those per-run times is reported. Host-side launch overhead is included,
as a user calling the model sees it. All three compute in IEEE float32: tritonnx's dots
use `input_precision="ieee"`, so TF32 is switched off in cuBLAS and cuDNN unless
`--tf32` is given; cuDNN's autotuner (`cudnn.benchmark`) is on for eager. A failure in
one variant (export, compile, run) is reported in that network's row; the bench goes on.

Without a CUDA device it prints that nothing was measured and exits 0. `--dry-run`
(the way to exercise it on a CPU-only machine) builds and exports the networks and
compiles each with tritonnx -- for the CPU interpreter when there is no GPU -- and
reports whether that succeeded, the compile time in seconds and the kernel launch count;
it runs nothing through tritonnx (ResNet-50 in Triton's interpreter takes far too long),
but checks each export against onnxruntime when onnxruntime is installed.

    python bench/gpu.py                    # on a GPU machine
    python bench/gpu.py --dry-run          # anywhere
    python bench/gpu.py --only resnet50-b1 --iters 50
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class Case:
    """One benchmark row: a network at one input shape."""

    key: str  # as --only names it
    network: str
    shape: str  # the input shape, for the table
    build: Callable  # () -> torch.nn.Module, eval mode, CPU
    inputs: Callable  # () -> tuple of CPU tensors
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


def cases() -> list[Case]:
    import torch_models as tm

    return [
        Case(
            "resnet50-b1",
            "ResNet-50",
            "1x3x224x224",
            tm.resnet50,
            lambda: (tm.image_input(1),),
            ("input",),
            ("logits",),
        ),
        Case(
            "resnet50-b32",
            "ResNet-50",
            "32x3x224x224",
            tm.resnet50,
            lambda: (tm.image_input(32),),
            ("input",),
            ("logits",),
        ),
        Case(
            "bert-base-s128",
            "BERT-base encoder",
            "1x128",
            tm.bert_base,
            lambda: tm.bert_inputs(1, 128),
            ("input_ids", "attention_mask"),
            ("last_hidden_state",),
        ),
    ]


@dataclass
class Result:
    """What was measured for one Case; times in milliseconds, None when not measured."""

    case: Case
    eager_ms: float | None = None
    compile_ms: float | None = None  # torch.compile
    tritonnx_ms: float | None = None  # CUDA graph replay (the default)
    nograph_ms: float | None = None  # cuda_graphs=False: a Python launch per kernel
    graphs: int | None = None  # CUDA graphs the model captured
    err_tritonnx: float | None = None  # max relative error of tritonnx against eager
    err_compile: float | None = None  # max relative error of torch.compile against eager
    kernels: int | None = None  # tritonnx kernel launches per forward
    tritonnx_compile_s: float | None = None
    export_err: float | None = None  # onnxruntime against eager (dry run)
    errors: dict[str, str] = field(default_factory=dict)  # variant -> one-line message


# --------------------------------------------------------------------------- helpers


def short(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: type and the start of its message."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def export(case: Case, model, inputs: tuple, path: Path) -> str:
    """Exports `model` to ONNX opset 17 at `path` with static shapes.

    Uses the TorchScript-based exporter (`dynamo=False`): the torch.export-based one, the
    default since torch 2.9, needs the onnxscript package. Falls back to the default
    exporter where the legacy one is gone. Returns which exporter was used."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(
        input_names=list(case.input_names),
        output_names=list(case.output_names),
        opset_version=17,
        do_constant_folding=True,
    )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning, tracer warnings
        try:
            torch.onnx.export(model, inputs, str(path), dynamo=False, **kwargs)
            return "torchscript"
        except (TypeError, NotImplementedError, RuntimeError) as legacy_error:
            try:
                torch.onnx.export(model, inputs, str(path), dynamo=True, external_data=False, **kwargs)
                return "dynamo"
            except Exception as e:
                raise RuntimeError(f"legacy exporter: {short(legacy_error)}; dynamo exporter: {short(e)}") from e


def max_rel_error(got, ref) -> float:
    """max |got - ref| / max |ref|, in float64 (0 when both are zero)."""
    import torch

    got = torch.as_tensor(got).double()
    ref = torch.as_tensor(ref).double().to(got.device)
    scale = ref.abs().max().item()
    diff = (got - ref).abs().max().item()
    return diff / scale if scale > 0 else diff


def cuda_median_ms(fn: Callable[[], object], warmup: int, iters: int) -> float:
    """Median over `iters` runs of `fn()` in milliseconds, timed with CUDA events after
    `warmup` untimed runs. Each run is bracketed by its own event pair and synchronized,
    so runs do not overlap and the host's launch time counts."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def gpu_targets() -> tuple[str, ...]:
    """tritonnx's AOT target for the current device: sm_90 on capability 9.0, else sm_80."""
    import torch

    return ("sm_90",) if torch.cuda.get_device_capability() == (9, 0) else ("sm_80",)


def compile_tritonnx(onnx_path: Path, out_dir: Path, targets: tuple[str, ...], res: Result):
    """tritonnx.compile into `out_dir`; records compile seconds and launch count in `res`.
    Returns the CompiledModel, or None after recording the error."""
    import tritonnx

    t0 = time.perf_counter()
    try:
        model = tritonnx.compile(onnx_path, out_dir, targets=targets)
    except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
        res.errors["tritonnx compile"] = short(e)
        return None
    res.tritonnx_compile_s = time.perf_counter() - t0
    res.kernels = len(model.launches)
    return model


# --------------------------------------------------------------------------- GPU run


def bench_case(case: Case, workdir: Path, args) -> Result:
    """Exports, compiles and times one Case on the GPU. Every failure lands in the Result."""
    import torch

    res = Result(case)
    model = case.build()
    inputs = case.inputs()
    onnx_path = workdir / f"{case.key}.onnx"
    try:
        export(case, model, inputs, onnx_path)
    except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
        res.errors["export"] = short(e)
        onnx_path = None

    model = model.cuda()
    feeds = tuple(t.cuda() for t in inputs)

    with torch.inference_mode():
        try:
            ref = model(*feeds)
            # partial, not a lambda: the callable holds its arguments, so `del model, feeds` below frees them
            res.eager_ms = cuda_median_ms(functools.partial(model, *feeds), args.warmup, args.iters)
        except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
            res.errors["eager"] = short(e)
            ref = None

    if not args.skip_torch_compile:
        torch._dynamo.reset()
        compiled = None
        try:
            compiled = torch.compile(model, dynamic=False)
            with torch.inference_mode():
                out = compiled(*feeds)  # compiles
                if ref is not None:
                    res.err_compile = max_rel_error(out, ref)
                res.compile_ms = cuda_median_ms(functools.partial(compiled, *feeds), args.warmup, args.iters)
        except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
            res.errors["torch.compile"] = short(e)
        del compiled
        torch._dynamo.reset()

    if onnx_path is not None:
        tnx = compile_tritonnx(onnx_path, workdir / f"{case.key}.tritonnx", args.targets, res)
        if tnx is not None:
            tnx_feeds = dict(zip(tnx.input_names, feeds))
            out_name = tnx.output_names[0]
            try:
                with torch.inference_mode():
                    out = tnx.run(tnx_feeds)[out_name]
                    if ref is not None:
                        res.err_tritonnx = max_rel_error(out, ref)
                    res.tritonnx_ms = cuda_median_ms(functools.partial(tnx.run, tnx_feeds), args.warmup, args.iters)
                    res.graphs = tnx.graphs_captured
                    tnx.cuda_graphs = False
                    res.nograph_ms = cuda_median_ms(functools.partial(tnx.run, tnx_feeds), args.warmup, args.iters)
            except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
                res.errors["tritonnx run"] = short(e)
            del tnx
    del model, feeds
    torch.cuda.empty_cache()
    return res


# --------------------------------------------------------------------------- dry run


def dry_case(case: Case, workdir: Path, targets: tuple[str, ...]) -> Result:
    """Builds, exports and tritonnx-compiles one Case without running tritonnx; checks
    the export against onnxruntime (CPU) when onnxruntime is installed."""
    import torch

    res = Result(case)
    model = case.build()
    inputs = case.inputs()
    onnx_path = workdir / f"{case.key}.onnx"
    try:
        exporter = export(case, model, inputs, onnx_path)
    except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
        res.errors["export"] = short(e)
        return res
    if exporter != "torchscript":
        res.errors["note"] = f"exported with the {exporter} exporter"
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    if ort is not None:
        try:
            with torch.inference_mode():
                ref = model(*inputs)
            sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
            got = sess.run(None, {n: t.numpy() for n, t in zip(case.input_names, inputs)})[0]
            res.export_err = max_rel_error(torch.from_numpy(got), ref)
        except Exception as e:  # noqa: BLE001 - recorded in the Result; the bench goes on
            res.errors["onnxruntime check"] = short(e)
    del model
    compile_tritonnx(onnx_path, workdir / f"{case.key}.tritonnx", targets, res)
    return res


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def print_table(results: list[Result], title: str, dry_run: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))  # a log file: do not wrap the table at 80
    table = Table(title=title)
    if dry_run:
        for col in ("network", "input", "export vs ORT (rel err)", "tritonnx compile", "compile s", "kernels"):
            table.add_column(col, justify="left" if col in ("network", "input", "tritonnx compile") else "right")
        for r in results:
            failed = "tritonnx compile" in r.errors or "export" in r.errors
            table.add_row(
                r.case.network,
                r.case.shape,
                fmt(r.export_err, ".2e"),
                "[red]failed[/red]" if failed else "[green]ok[/green]",
                fmt(r.tritonnx_compile_s, ".1f"),
                fmt(r.kernels, "d"),
            )
    else:
        for col in (
            "network",
            "input",
            "eager ms",
            "torch.compile ms",
            "tritonnx ms",
            "no graph ms",
            "graphs",
            "tritonnx/eager",
            "tritonnx/compile",
            "rel err tritonnx",
            "rel err compile",
            "kernels",
        ):
            table.add_column(col, justify="left" if col in ("network", "input") else "right")
        for r in results:
            table.add_row(
                r.case.network,
                r.case.shape,
                fmt(r.eager_ms, ".3f"),
                fmt(r.compile_ms, ".3f"),
                fmt(r.tritonnx_ms, ".3f"),
                fmt(r.nograph_ms, ".3f"),
                fmt(r.graphs, "d"),
                ratio(r.tritonnx_ms, r.eager_ms),
                ratio(r.tritonnx_ms, r.compile_ms),
                fmt(r.err_tritonnx, ".2e"),
                fmt(r.err_compile, ".2e"),
                fmt(r.kernels, "d"),
            )
    console.print(table)
    for r in results:
        for what, msg in r.errors.items():
            console.print(f"[bold]{r.case.key}[/bold] {what}: {msg}", highlight=False, markup=False)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    all_keys = ["resnet50-b1", "resnet50-b32", "bert-base-s128"]
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="build, export and tritonnx-compile only (for the CPU interpreter without a GPU); time nothing",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=all_keys,
        default=all_keys,
        metavar="CASE",
        help=f"the cases to run, of {', '.join(all_keys)} (default: all)",
    )
    p.add_argument("--warmup", type=int, default=10, help="untimed runs before timing (default 10)")
    p.add_argument("--iters", type=int, default=100, help="timed runs; the median is reported (default 100)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the ONNX files and tritonnx artifacts go (default: a temporary directory, removed afterwards)",
    )
    p.add_argument(
        "--tf32", action="store_true", help="let PyTorch use TF32 in cuBLAS/cuDNN (tritonnx stays IEEE float32)"
    )
    p.add_argument("--skip-torch-compile", action="store_true", help="leave torch.compile out")
    args = p.parse_args(argv)

    import torch

    has_cuda = torch.cuda.is_available()
    if not has_cuda and not args.dry_run:
        print(
            "No CUDA device found (torch.cuda.is_available() is False): nothing was measured. "
            "Run on a GPU machine, or with --dry-run to build, export and compile the networks."
        )
        return 0
    selected = [c for c in cases() if c.key in args.only]
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tritonnx-bench-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)

    try:
        if args.dry_run:
            targets = gpu_targets() if has_cuda else ()
            where = f"targets {', '.join(targets)}" if targets else "the CPU interpreter"
            print(f"dry run: torch {torch.__version__}; tritonnx compiles for {where}; work dir {workdir}")
            results = []
            for case in selected:
                t0 = time.perf_counter()
                results.append(dry_case(case, workdir, targets))
                print(f"  {case.key}: {time.perf_counter() - t0:.1f} s", flush=True)
            print_table(results, "tritonnx bench (dry run: nothing timed)", dry_run=True)
            return 0

        import triton

        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
        args.targets = gpu_targets()
        name = torch.cuda.get_device_name()
        cap = torch.cuda.get_device_capability()
        print(
            f"{name} (capability {cap[0]}.{cap[1]}), torch {torch.__version__}, triton {triton.__version__}; "
            f"tritonnx targets {', '.join(args.targets)}; {'TF32' if args.tf32 else 'IEEE float32'} in torch; "
            f"median of {args.iters} runs after {args.warmup} warmup, CUDA events"
        )
        results = []
        for case in selected:
            t0 = time.perf_counter()
            try:
                results.append(bench_case(case, workdir, args))
            except Exception as e:  # noqa: BLE001 - anything bench_case did not catch itself: recorded, the next case runs
                traceback.print_exc()
                r = Result(case)
                r.errors["bench"] = short(e)
                results.append(r)
            print(f"  {case.key}: {time.perf_counter() - t0:.1f} s", flush=True)
        print_table(results, f"latency on {name}, ms (ratio < 1: tritonnx faster)", dry_run=False)
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
