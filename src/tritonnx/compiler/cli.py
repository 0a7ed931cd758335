"""The `tritonnx` command line: `compile`, `run`, `report`, `cache`.

User and environment errors (a bad model, a wrong input, an output path tritonnx may not
replace, a full disk) print one `error:` line and exit 1; "internal error" (exit 2) is kept
for tritonnx's own bugs."""

from __future__ import annotations

import argparse
import sys
import traceback
import zipfile

import numpy as np

from tritonnx.target import ALIASES, TARGETS
from tritonnx.target import DEFAULT as TARGETS_DEFAULT


def _compile(args) -> int:
    import tritonnx

    model = tritonnx.compile(
        args.model,
        args.output,
        targets=tuple(args.target or ()),
        dump_ir=args.dump_ir,
        override_initializers=tuple(args.override_initializer or ()),
        progress=sys.stderr.isatty(),
        cache=not args.no_cache,
        precision=args.precision,
        shapes=_shapes(args.shape or ()),
        size_hints=_hints(args.size_hint or ()),
        check_indices=not args.no_index_check,
    )
    plan = model.plan
    if plan.get("program"):
        print(
            f"compiled {args.model} -> {args.output}: a program of {len(plan['steps'])} steps around its "
            f"control flow, {len(plan['host_reads'])} sync points, {len(model.launches)} launches in its sub-artifacts"
        )
        if args.report:
            from tritonnx.compiler.report import report

            report(args.output)
        return 0
    print(
        f"compiled {args.model} -> {args.output}"
        + (" (from the compile cache)" if model.cached else "")
        + f": {len(plan['launches'])} launches of "
        f"{plan['kernels']} distinct kernels"
        + (f", cubins for {', '.join(plan['targets'])}" if plan["targets"] else "")
        + (f", dynamic sizes {', '.join(plan['symbols'])}" if plan.get("symbols") else "")
    )
    if args.report:
        from tritonnx.compiler.report import report

        report(args.output)
    return 0


def _shapes(specs) -> dict:
    """{'name': [d1, d2]} from ['name=d1,d2', ...]. Raises InputError for a malformed spec."""
    from tritonnx.errors import InputError

    out = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            out[name] = [int(d) for d in dims.split(",")]
        except ValueError:
            raise InputError(f"--shape {spec!r}: expected NAME=D1,D2,... with integer sizes") from None
        if not name:
            raise InputError(f"--shape {spec!r}: expected NAME=D1,D2,...")
    return out


def _hints(specs) -> dict:
    """{'seq': 512} from ['seq=512', ...]. Raises InputError for a malformed spec."""
    from tritonnx.errors import InputError

    out = {}
    for spec in specs:
        name, _, n = spec.partition("=")
        if not name or not n.strip().isdigit() or int(n) < 1:
            raise InputError(f"--size-hint {spec!r}: expected SYMBOL=N with a positive integer N")
        out[name] = int(n)
    return out


def _report(args) -> int:
    from tritonnx.compiler import report as rep

    text = rep.report(args.artifact, args.format, args.gpu, wide=args.wide)
    if text is not None:
        print(text)
    if args.graph:
        for msg in rep.write_graph(args.artifact, args.graph):
            print(msg)
    if args.annotated_onnx:
        print(rep.write_annotated_onnx(args.artifact, args.annotated_onnx))
    return 0


def _load_array_file(path: str):
    """np.load of an .npy or .npz file; raises InputError naming the file when it is missing
    or not one of those."""
    from tritonnx.errors import InputError

    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"--inputs {path}: no such file.") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # not an .npy/.npz, truncated
        raise InputError(f"--inputs {path} is not a readable .npz or .npy file ({type(e).__name__}: {e}).") from None


def _read_inputs(specs: list[str], model) -> dict:
    """{input name: array} from `--inputs` values (Polygraphy's forms): FILE.npz (one array
    per input, by name), FILE.npy (a model with one input), NAME=FILE.npy (one input;
    repeatable). Raises InputError saying what is wrong and which file."""
    from tritonnx.errors import InputError

    names = [i["name"] for i in model.plan["inputs"]]
    feeds: dict = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name in names:  # NAME=FILE.npy
            data = _load_array_file(path)
            if not isinstance(data, np.ndarray):
                raise InputError(f"--inputs {spec}: {path} holds several arrays; NAME=FILE takes one .npy array.")
            feeds[name] = data
            continue
        if sep and not any(c in name for c in "/\\."):
            raise InputError(f"--inputs {spec}: the model has no input {name!r}; its inputs are {', '.join(names)}.")
        path = spec
        data = _load_array_file(path)
        if isinstance(data, np.ndarray):
            if len(names) != 1:
                raise InputError(
                    f"--inputs {path} holds one array, but the model takes {len(names)} inputs "
                    f"({', '.join(names)}): give an .npz file with one array per input name, or NAME=FILE.npy per input."
                )
            feeds[names[0]] = data
            continue
        try:
            with data:
                feeds.update({k: data[k] for k in data.files})
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise InputError(f"--inputs {path}: cannot read its arrays ({type(e).__name__}: {e}).") from None
    return feeds


def _random_inputs(model, seed: int) -> dict:
    """Seeded random inputs at the plan's static shapes: floats standard normal, integers
    in [0, 2) (valid indices of any axis), booleans either. Raises InputError for a dynamic
    artifact, whose sizes only the user knows."""
    from tritonnx.errors import InputError

    if model.dynamic:
        raise InputError(
            "the artifact has dynamic sizes ("
            + ", ".join(model.plan.get("symbols") or ["sizes that follow the control flow"])
            + "): give the inputs with --inputs FILE.npz (or NAME=FILE.npy per input)"
        )
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in model.plan["inputs"]:
        dtype = np.dtype(i["dtype"]) if i["dtype"] != "bfloat16" else np.dtype(np.float32)
        if dtype.kind == "f":
            feeds[i["name"]] = rng.standard_normal(i["shape"]).astype(i["dtype"])
        elif dtype.kind == "b":
            feeds[i["name"]] = rng.integers(0, 2, i["shape"]).astype(bool)
        else:
            feeds[i["name"]] = rng.integers(0, 2, i["shape"]).astype(dtype)
    return feeds


def _benchmark(model, feeds: dict, warmup: int, iterations: int) -> None:
    """Prints latency (median, p90, min, in ms) and throughput of `iterations` runs after
    `warmup` ones: CUDA events around each run on a GPU, wall time on the interpreter."""
    import time

    import torch

    from tritonnx.runtime import to_torch

    tensors = {k: to_torch(v).to(model.device) for k, v in feeds.items()}  # on the device: no copies timed
    for _ in range(warmup):
        model.run(tensors)
    times = []
    for _ in range(iterations):
        if model.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            model.run(tensors)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            model.run(tensors)
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    batch = next(iter(feeds.values())).shape[0] if feeds and next(iter(feeds.values())).ndim else 1
    how = (
        f"CUDA events on {torch.cuda.get_device_name()}"
        if model.device == "cuda"
        else "wall time on Triton's CPU interpreter: these are not GPU figures"
    )
    print(f"benchmark: {iterations} iterations after {warmup} warmup ({how})")
    print(
        f"latency: median {np.median(ms):.3f} ms, p90 {np.percentile(ms, 90):.3f} ms, min {ms.min():.3f} ms; "
        f"throughput {1e3 / np.median(ms):.2f} runs/s ({batch * 1e3 / np.median(ms):.2f} samples/s at batch {batch})"
    )


def _run(args) -> int:
    from tritonnx.errors import InputError
    from tritonnx.runtime import open_artifact

    model = open_artifact(args.artifact, cuda_graphs=not args.no_cuda_graphs)
    if args.check_layers and model.plan.get("program"):
        raise InputError(
            "--check-layers compares the launches of one straight-line artifact; this one is a program of "
            "control-flow steps: run --check-layers on a step's sub-artifact (steps/<k>/ in the artifact)."
        )
    if args.inputs:
        feeds = _read_inputs(args.inputs, model)
    else:
        feeds = _random_inputs(model, args.seed)
        print(f"inputs: seeded random (--seed {args.seed})")
    layers = None
    if args.check_layers:  # one launch-by-launch run gives the outputs and every layer
        from tritonnx.compiler.layerwise import compare_layers

        layers = compare_layers(model, feeds, args.rtol)
        outputs = layers.outputs
        args.check = True
    else:
        outputs = model.run(feeds)
    for name, value in outputs.items():
        print(
            f"{name}: shape {list(value.shape)} {value.dtype}, mean {float(value.mean()):.6g}, "
            f"max {float(value.max()):.6g}"
        )
    if args.output:  # to exactly the path given (np.savez would append .npz to a name without it)
        with open(args.output, "wb") as f:
            np.savez(f, **outputs)
    if args.benchmark:
        _benchmark(model, feeds, args.warmup, args.iterations)
    if args.check:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(model.path / "model.onnx"), providers=["CPUExecutionProvider"])
        ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        worst = 0.0
        for name, value in outputs.items():
            diff = float(np.abs(value.astype(np.float64) - ref[name]).max()) if value.size else 0.0
            rel = diff / max(float(np.abs(ref[name]).max()) if value.size else 0.0, 1e-30)
            worst = max(worst, rel)
            print(f"check {name} against onnxruntime: max abs error {diff:.3g}, relative error {rel:.3g}")
        if layers is not None:
            from tritonnx.compiler.layerwise import format_layers

            print("\n".join(format_layers(layers)))
        if worst > args.rtol:
            print(f"error: relative error {worst:.3g} exceeds {args.rtol:g}", file=sys.stderr)
            return 1
        if layers is not None and layers.first is not None:
            print(
                f"error: layer #{layers.first.launch} ({layers.first.tensor}) has relative error "
                f"{layers.first.rel_error:.3g}, over {args.rtol:g}",
                file=sys.stderr,
            )
            return 1
    return 0


def doctor() -> list[tuple[str, str]]:
    """(component, what it is and what that means) for what `tritonnx` will run with here:
    tritonnx, torch and its CUDA build, Triton and its backend, the GPU and its compute
    capability (and whether tritonnx has a target table for it), or the interpreter."""
    import platform

    from tritonnx import __version__

    rows = [("tritonnx", f"{__version__} (Python {platform.python_version()})")]
    try:
        import torch
    except ImportError as e:
        return rows + [("torch", f"not importable ({e}): nothing can run")]
    cuda = torch.version.cuda
    rows.append(("torch", f"{torch.__version__}, " + (f"built for CUDA {cuda}" if cuda else "a CPU-only build")))
    try:
        import triton

        rows.append(("triton", triton.__version__))
    except ImportError as e:
        rows.append(("triton", f"not importable ({e})"))
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        target = f"sm_{major}{minor}"
        known = target in TARGETS
        rows.append(
            (
                "GPU",
                f"{torch.cuda.get_device_name()}, compute capability {major}.{minor} ({target}"
                + ("" if known else f"; no tritonnx target table for it: tiling uses {TARGETS_DEFAULT}")
                + ")",
            )
        )
        rows.append(("runs on", "the GPU: kernels from the artifact's cubins for this target, else Triton's JIT"))
    else:
        why = (
            "torch is a CPU-only build"
            if not cuda
            else "torch is built for CUDA but sees no device (driver, CUDA_VISIBLE_DEVICES)"
        )
        rows.append(("GPU", f"none usable: {why}"))
        rows.append(
            (
                "runs on",
                "Triton's CPU interpreter: right numbers, not GPU speed; kernels can still be compiled "
                "for a GPU ahead of time (--target sm_90)",
            )
        )
    return rows


def _doctor(args) -> int:
    rows = doctor()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


def _cache(args) -> int:
    from tritonnx.compiler import cache

    if args.action == "clear":
        n = cache.clear()
        print(f"removed {n} compile cache entries from {cache.cache_dir()}")
        return 0
    i = cache.info()
    print(
        f"compile cache: {i['path']}\nentries: {i['entries']} (at most {i['max_entries']} are kept)\n"
        f"size: {i['bytes'] / 1e6:.1f} MB"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tritonnx", description="Compile ONNX models to fused Triton kernels and run them."
    )
    from tritonnx import __version__

    p.add_argument("--version", action="version", version=f"tritonnx {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile an ONNX model into an artifact directory")
    c.add_argument("model", help="path of the .onnx file")
    c.add_argument("-o", "--output", required=True, help="artifact directory to create")
    c.add_argument("--dump-ir", metavar="DIR", help="write one numbered .mlir file per pass and the Triton sources")
    c.add_argument(
        "--target",
        action="append",
        choices=list(TARGETS),
        help="compile every kernel to cubin for this GPU ahead of time (repeatable); kernels are "
        "tiled for the first one",
    )
    c.add_argument(
        "--override-initializer",
        action="append",
        metavar="NAME",
        help="keep this graph input a run-time input although it has an initializer (repeatable)",
    )
    c.add_argument(
        "--shape",
        action="append",
        metavar="NAME=D1,D2,...",
        help="specialize: compile for exactly this shape of an input with dynamic dimensions "
        "(repeatable; without it the artifact runs at any sizes)",
    )
    c.add_argument(
        "--size-hint",
        action="append",
        metavar="SYMBOL=N",
        help="the size the block-size heuristics assume for a dynamic dimension (default 128; repeatable)",
    )
    c.add_argument(
        "--precision",
        choices=["fp32", "tf32", "fp16", "bf16"],
        default="fp32",
        help="compute precision (default fp32); fp16/bf16 store tensors in half, accumulate in fp32",
    )
    c.add_argument("--no-cache", action="store_true", help="compile even when the compile cache has this model")
    c.add_argument(
        "--no-index-check",
        action="store_true",
        help="no run-time check of Gather indices from data (loads stay masked; bad indices give "
        "unspecified values instead of an error)",
    )
    c.add_argument("--report", action="store_true", help="print the cost report (see `tritonnx report`)")
    c.set_defaults(fn=_compile)
    rp = sub.add_parser("report", help="per-kernel FLOPs, modeled DRAM bytes, roofline time; totals against bounds")
    rp.add_argument("artifact", help="artifact directory written by `tritonnx compile`")
    rp.add_argument("--format", choices=["table", "json"], default="table", help="rich tables (default) or JSON")
    rp.add_argument(
        "--gpu",
        choices=[*TARGETS, *ALIASES],
        default="H100",
        help="roofline ceilings: a target or product (default H100)",
    )
    rp.add_argument("--wide", action="store_true", help="every column: ONNX node names, grid, block, warps")
    rp.add_argument(
        "--graph",
        metavar="OUT.svg",
        help="draw the ONNX graph with each kernel's nodes as a cluster; writes OUT.dot beside (svg needs `dot`)",
    )
    rp.add_argument(
        "--annotated-onnx",
        metavar="OUT.onnx",
        help="write model.onnx with each node's kernel in metadata_props (tritonnx.kernel, tritonnx.launch)",
    )
    rp.set_defaults(fn=_report)
    r = sub.add_parser("run", help="run a compiled artifact")
    r.add_argument("artifact", help="artifact directory written by `tritonnx compile`")
    r.add_argument(
        "--inputs",
        action="append",
        metavar="FILE.npz|FILE.npy|NAME=FILE.npy",
        help="the inputs: an .npz with one array per input name, an .npy for a one-input model, or "
        "NAME=FILE.npy per input (repeatable); default: seeded random",
    )
    r.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    r.add_argument(
        "--benchmark", action="store_true", help="time the runs: median/p90 latency and throughput (trtexec-style)"
    )
    r.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed runs before --benchmark (default 2)")
    r.add_argument("--iterations", type=int, default=10, metavar="N", help="timed runs of --benchmark (default 10)")
    r.add_argument(
        "--no-cuda-graphs",
        action="store_true",
        help="on a GPU, launch kernel by kernel instead of replaying a CUDA graph per set of input sizes",
    )
    r.add_argument("--output", help="write the outputs to this .npz file")
    r.add_argument("--check", action="store_true", help="compare with onnxruntime and print the errors")
    r.add_argument(
        "--check-layers",
        action="store_true",
        help="--check, and every kernel's output against onnxruntime's value of its ONNX tensor: "
        "names the first diverging node (Polygraphy-style layerwise comparison)",
    )
    r.add_argument("--rtol", type=float, default=1e-4, help="relative error --check accepts (default 1e-4)")
    r.set_defaults(fn=_run)
    d = sub.add_parser(
        "doctor", help="print what will run here: torch and its CUDA, Triton, the GPU or the interpreter"
    )
    d.set_defaults(fn=_doctor)
    ca = sub.add_parser(
        "cache", help="show or clear the compile cache ($TRITONNX_CACHE_DIR, else the platform's cache directory)"
    )
    ca.add_argument(
        "action", choices=["info", "clear"], help="info: where it is and its size; clear: remove its entries"
    )
    ca.set_defaults(fn=_cache)
    return p


def main(argv=None) -> int:
    from tritonnx.errors import TritonnxError

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except TritonnxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory.", file=sys.stderr)
        return 1
    except OSError as e:  # the environment: a full disk, a missing or unwritable path
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}.", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug in tritonnx: say so, keep the details short
        last = traceback.extract_tb(e.__traceback__)[-1]
        print(
            f"internal error: {type(e).__name__}: {e} (at {last.filename}:{last.lineno}); "
            "please report it with the model.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
