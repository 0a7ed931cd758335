"""`tritonnx-opt`: an mlir-opt style driver. Reads a .mlir file (or stdin), runs a pass
pipeline of tritonnx passes and upstream MLIR passes, prints the result.

    tritonnx-opt input.mlir --pass-pipeline=tnx-canonicalize,fuse
    tritonnx-opt input.mlir --pass-pipeline='choose-blocks{target=gpu},lower-to-tile'
    tritonnx-opt 07-partition.mlir --pass-pipeline=multi-output --mlir-print-debuginfo  # = 08-multi-output.mlir

A pass's `{key=value}` options change the compile options (`CompileOptions`, default
ones otherwise) while that pass runs: `target` (`gpu` for the default GPU target,
`interpreter`, or a target name such as `sm_80`), `precision`, `check_indices`.

mlir-opt's options work too: `--pass-pipeline='builtin.module(fuse,outline)'` (the anchored
form; the outer `builtin.module(...)` is stripped), `-o FILE` (write the output to FILE
instead of stdout), `--mlir-print-ir-after-all` (the IR after each pass on stderr, each
dump headed `// -----// IR Dump After <pass> //----- //`) and `--mlir-timing` (a pass
timing report on stderr). An unknown option, pass or pass option is one `tritonnx-opt: ...`
error line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from typing import NoReturn

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


class PipelineError(ValueError):
    """A pipeline that names an unknown pass or gives a pass an unknown or malformed option."""


def strip_anchor(pipeline: str) -> str:
    """`pipeline` without an outer `builtin.module(...)`, mlir-opt's anchored form:
    `builtin.module(fuse,outline)` is `fuse,outline`."""
    pipeline = pipeline.strip()
    m = re.fullmatch(r"builtin\.module\s*\((.*)\)", pipeline, re.DOTALL)
    return m.group(1).strip() if m else pipeline


def _parse_options(name: str, text: str) -> dict[str, str]:
    """The `key=value` options of pass `name`, checked against `pass_options`."""
    options: dict[str, str] = {}
    for kv in text.split():
        key, eq, value = kv.partition("=")
        if not eq or not key:
            raise PipelineError(f"pass {name}: malformed option {kv!r}, expected key=value")
        options[key] = value
    try:
        pass_options(CompileOptions(), options)
    except ValueError as e:
        raise PipelineError(f"pass {name}: {e}") from None
    return options


def build(pipeline: str) -> PassManager:
    """A PassManager for a comma-separated list of tritonnx and upstream passes, optionally
    anchored as `builtin.module(...)`; tritonnx pass options are written
    `name{key=value key2=value2}`. Raises PipelineError for an unknown pass or option."""
    passes = registry()
    pm = PassManager("builtin.module")
    for item in _split(strip_anchor(pipeline)):
        m = re.fullmatch(r"([\w-]+)(?:\{(.*)\})?", item, re.DOTALL)
        name = m.group(1) if m else item
        if m and name in passes:
            options = _parse_options(name, m.group(2) or "")
            run = passes[name][0]
            pm.add(_with_options(run, options) if options else run, name=name, argument=name)
        else:
            try:
                pm.add(item)
            except Exception as e:  # noqa: BLE001 - MLIR's parser error, as one line
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and set(ln.strip()) != {"^"}]
                detail = lines[0] if lines else type(e).__name__
                detail = detail.removeprefix("MLIR Textual PassPipeline Parser:")
                raise PipelineError(f"bad pass {item!r}: {detail}") from None
    return pm


class _UsageError(Exception):
    """A command-line error; `main` prints it as one `tritonnx-opt: ...` line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise _UsageError (argparse prints usage, exits 2)."""

    def error(self, message: str) -> NoReturn:
        m = re.match(r"unrecognized arguments: (.*)", message)
        if m:
            message = f"unknown option {m.group(1)}; see tritonnx-opt --help"
        raise _UsageError(message)


def main(argv=None) -> int:
    """Run `tritonnx-opt` on `argv` (default: sys.argv[1:]); returns the exit status."""
    p = _Parser(
        prog="tritonnx-opt",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", default="-", help="input .mlir file (default: stdin)")
    p.add_argument(
        "--pass-pipeline",
        default="",
        help="comma-separated passes, e.g. tnx-canonicalize,fuse or 'builtin.module(fuse,outline)'",
    )
    p.add_argument("-o", dest="output", default="-", metavar="FILE", help="output file (default: stdout)")
    p.add_argument(
        "--mlir-print-ir-after-all",
        action="store_true",
        help="print the IR after each pass to stderr, each headed `// -----// IR Dump After <pass> //----- //`",
    )
    p.add_argument("--mlir-timing", action="store_true", help="print a pass timing report to stderr")
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
    try:
        args = p.parse_args(argv)
    except _UsageError as e:
        print(f"tritonnx-opt: {e}", file=sys.stderr)
        return 1
    if args.list_passes:
        for name, (_, doc) in registry().items():
            print(f"{name}: {doc}")
        return 0
    try:
        text = sys.stdin.read() if args.input == "-" else open(args.input).read()
    except OSError as e:
        print(f"tritonnx-opt: cannot read {args.input}: {e.strerror}", file=sys.stderr)
        return 1
    session = Session()  # this run's weights: the blobs the input kept
    session.weights.adopt(text)
    token = use_session(session)
    with make_context(), ir.Location.unknown():
        try:
            module = ir.Module.parse(text)
            if args.pass_pipeline:  # a dynamic module (`tnx.symbols`) keeps its symbolic sizes
                pm = build(args.pass_pipeline)
                if args.mlir_print_ir_after_all:
                    pm.enable_ir_printing(print_after_all=True)
                if args.mlir_timing:
                    pm.enable_timing()
                sys.stdout.flush()
                sys.stderr.flush()
                try:
                    with symbolic.scope(symbolic.module_hints(module.operation)):
                        pm.run(module.operation)
                finally:
                    del pm  # the timing report is printed when the PassManager goes
        except Exception as e:  # noqa: BLE001 - a tool's error line and exit status 1, like mlir-opt
            print(f"tritonnx-opt: {e}", file=sys.stderr)
            return 1
        finally:
            _session.reset(token)
        out = [dump_text(module, debug_info=args.mlir_print_debuginfo)]
        if args.print_triton:
            for name, source in session.sources.items():
                out.append(f"// ----- Triton source of @{name} -----\n{source}")
        if args.output == "-":
            print("".join(out), end="")
        else:
            try:
                with open(args.output, "w") as f:
                    f.write("".join(out))
            except OSError as e:
                print(f"tritonnx-opt: cannot write {args.output}: {e.strerror}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
