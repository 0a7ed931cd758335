"""`tritonnx-opt`: an mlir-opt style driver. Reads a .mlir file (or stdin), runs a pass
pipeline of tritonnx passes and upstream MLIR passes, prints the result.

    tritonnx-opt input.mlir --pass-pipeline=tnx-canonicalize,fuse
    tritonnx-opt input.mlir --pass-pipeline='choose-blocks{target=gpu},lower-to-tile'
    tritonnx-opt 07-partition.mlir --pass-pipeline=multi-output --mlir-print-debuginfo  # = 08-multi-output.mlir

A pass's `{key=value}` options change the compile options (`CompileOptions`, default
ones otherwise) while that pass runs: `target` (`gpu` for the default GPU target,
`interpreter`, or a target name such as `sm_80`), `precision`, `check_indices`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

from mlir import ir
from mlir.passmanager import PassManager

from tritonnx import symbolic
from tritonnx import target as gpu_targets
from tritonnx.compiler.driver import dump_text
from tritonnx.compiler.options import CompileOptions
from tritonnx.compiler.pipeline import registry
from tritonnx.dialects import make_context
from tritonnx.passes import Session, _session, current_session, use_session


def _split(pipeline: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in pipeline:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def pass_options(base: CompileOptions, options: dict[str, str]) -> CompileOptions:
    """`base` changed by a pass's textual options (see the module docstring). Raises
    ValueError for an unknown option or value."""
    changes: dict = {}
    for key, value in options.items():
        if key == "target":
            changes["targets"] = (
                () if value == "interpreter" else (gpu_targets.DEFAULT,) if value == "gpu" else (value,)
            )
        elif key == "precision":
            changes["precision"] = value
        elif key == "check_indices":
            if value.lower() not in ("1", "0", "true", "false"):
                raise ValueError(f"check_indices={value}: expected true or false")
            changes["check_indices"] = value.lower() in ("1", "true")
        else:
            raise ValueError(f"unknown pass option {key!r} (target, precision, check_indices)")
    return dataclasses.replace(base, **changes)


def _with_options(run, options: dict[str, str]):
    """`run` with the session's compile options changed by `options` while it runs."""

    def wrapped(op, pass_):
        session = current_session()
        saved = session.options
        session.options = pass_options(saved, options)
        try:
            run(op, pass_)
        finally:
            session.options = saved

    return wrapped


def build(pipeline: str) -> PassManager:
    """A PassManager for a comma-separated list of tritonnx and upstream passes; tritonnx
    pass options are written `name{key=value key2=value2}`."""
    passes = registry()
    pm = PassManager("builtin.module")
    for item in _split(pipeline):
        m = re.fullmatch(r"([\w-]+)(?:\{(.*)\})?", item)
        name = m.group(1) if m else item
        if m and name in passes:
            options = dict(kv.split("=", 1) for kv in (m.group(2) or "").split())
            run = passes[name][0]
            pm.add(_with_options(run, options) if options else run, name=name, argument=name)
        else:
            pm.add(item)
    return pm


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tritonnx-opt", description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", default="-", help="input .mlir file (default: stdin)")
    p.add_argument("--pass-pipeline", default="", help="comma-separated passes, e.g. tnx-canonicalize,fuse")
    p.add_argument(
        "--mlir-print-debuginfo",
        action="store_true",
        help='print source locations (`loc("n51")`), as the compiler\'s dumps do',
    )
    p.add_argument(
        "--print-triton",
        action="store_true",
        help="after the IR, print the Triton source lower-to-triton wrote for each kernel",
    )
    p.add_argument("--list-passes", action="store_true", help="list tritonnx passes and exit")
    args = p.parse_args(argv)
    if args.list_passes:
        for name, (_, doc) in registry().items():
            print(f"{name}: {doc}")
        return 0
    text = sys.stdin.read() if args.input == "-" else open(args.input).read()
    session = Session()  # this run's weights: the blobs the input kept
    session.weights.adopt(text)
    token = use_session(session)
    with make_context(), ir.Location.unknown():
        try:
            module = ir.Module.parse(text)
            if args.pass_pipeline:  # a dynamic module (`tnx.symbols`) keeps its symbolic sizes
                with symbolic.scope(symbolic.module_hints(module.operation)):
                    build(args.pass_pipeline).run(module.operation)
        except Exception as e:  # noqa: BLE001 - a tool's error line and exit status 1, like mlir-opt
            print(f"tritonnx-opt: {e}", file=sys.stderr)
            return 1
        finally:
            _session.reset(token)
        print(dump_text(module, debug_info=args.mlir_print_debuginfo), end="")
        if args.print_triton:
            for name, source in session.sources.items():
                print(f"// ----- Triton source of @{name} -----")
                print(source, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
