"""`tritonnx.compile()`: ONNX file -> artifact directory -> CompiledModel."""

from __future__ import annotations

import os
import shutil
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from mlir import ir
from mlir.passmanager import PassManager
from onnx import numpy_helper

from tritonnx import symbolic
from tritonnx.compiler import aot, artifact, paths, program
from tritonnx.compiler import cache as compile_cache
from tritonnx.compiler.cost import bounds
from tritonnx.compiler.options import CompileOptions
from tritonnx.compiler.pipeline import stages
from tritonnx.dialects import make_context
from tritonnx.errors import CompileError, InputError, ModelLoadError, TritonnxError
from tritonnx.importers import control_flow
from tritonnx.importers.onnx import import_model, load, model_symbols, prepare
from tritonnx.passes import Session, _session, use_session

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

DUMP_ELEMENTS_LIMIT = 16  # elements: larger dense constants print as `dense<"0x...">`, elided
DUMP_RESOURCE_LIMIT = 64  # hex characters (about 27 bytes): larger dense_resource blobs (weights) are left out


def dump_text(module: ir.Module | ir.Operation, debug_info: bool = True) -> str:
    """The module as a person reads it and `tritonnx-opt` parses it back: with `debug_info`
    each op's source location inline (`loc("n51")`, the ONNX node; in a kernel's tile IR
    `loc("offs_m"(...))` names the value as the printed kernel does), weights above
    DUMP_RESOURCE_LIMIT bytes elided, small constants shown; the `{-# dialect_resources #-}`
    trailer holds the blobs that are kept and is left out when it would be empty (MLIR
    prints an empty one when every blob is elided).

    MLIR's local-scope printing writes locations inline but drops the resource trailer,
    so the body and the trailer come from two printings of the same module."""
    op = module.operation
    full = op.get_asm(large_elements_limit=DUMP_ELEMENTS_LIMIT, large_resource_limit=DUMP_RESOURCE_LIMIT)
    body = (
        op.get_asm(
            large_elements_limit=DUMP_ELEMENTS_LIMIT,
            large_resource_limit=DUMP_RESOURCE_LIMIT,
            enable_debug_info=True,
            use_local_scope=True,
        )
        if debug_info
        else full
    )
    if not debug_info and "\n{-#" in full:
        body = full[: full.rfind("\n{-#")]
    at = full.rfind("\n{-#")
    trailer = full[at:].strip() if at >= 0 else ""
    body = body.rstrip("\n") + "\n"
    if trailer.removeprefix("{-#").removesuffix("#-}").strip():
        return body + "\n" + trailer + "\n"
    return body


class _Progress:
    """The compile's progress bar (rich, transient): one step for the import, one per pass,
    one for writing the artifact and one per cubin job (an `aot.KernelProgress`), so it
    reaches 100% only when the compile is done. It appears once the compile has run
    `delay` seconds, a timer showing it even while one long step runs; disabled, it does
    nothing. `console`: the rich Console to draw on (None: standard error, which the CLI
    checks is a terminal, so a piped standard output never holds the bar's frames)."""

    def __init__(self, total: int, enabled: bool, console: Console | None = None, delay: float = 1.0):
        self.total, self.completed, self.label = total, 0, "import"
        self.jobs, self.compiled = 0, 0  # cubin jobs: added, finished
        self.running: list[str] = []  # cubin jobs being compiled now
        self.bar: Progress | None = None
        self.timer: threading.Timer | None = None
        if enabled:
            from rich.console import Console
            from rich.progress import MofNCompleteColumn, Progress

            console = console or Console(stderr=True)
            self.bar = Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=console, transient=True)
            self.task = self.bar.add_task(self.label, total=total)
            self.timer = threading.Timer(delay, self.bar.start)
            self.timer.start()

    def step(self, label: str = ""):
        """Completes the running step and begins `label` (none: the compile is done)."""
        self.completed += 1
        self.label = label
        self._show()

    def add(self, jobs: int):
        """`jobs` cubin jobs to come."""
        self.total += jobs
        self.jobs += jobs
        self._show()

    def start(self, label: str):
        """A cubin worker begins the job `label` ("KERNEL (sm_90)")."""
        self.running.append(label)
        self._show()

    def done(self, label: str):
        """A cubin worker has finished the job `label`."""
        self.running.remove(label)
        self.completed += 1
        self.compiled += 1
        self._show()

    def _show(self):
        """Updates the bar, redrawn at once when it is shown."""
        if self.bar is None:
            return
        label = self.label
        if self.running:  # names the job begun last, counts the others
            more = f" and {len(self.running) - 1} more" if len(self.running) > 1 else ""
            label = f"cubin {self.compiled}/{self.jobs}: {self.running[-1]}{more}"
        self.bar.update(self.task, total=self.total, completed=self.completed, description=label, refresh=True)

    def close(self):
        """Cancels the timer and takes the bar off the screen."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()  # a start under way ends before the stop
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()


def _refuse_unloaded_external_data(model) -> None:
    """Raises ModelLoadError for a ModelProto (or bytes) whose tensors refer to external
    data files: without the model's path there is no directory to resolve them against
    (onnx would read them relative to the current directory), and the cache key would cover
    only their names. A path is fine: onnx.load reads the data beside the model."""
    if isinstance(model, bytes):
        try:
            model = onnx.load_from_string(model)
        except Exception:  # noqa: BLE001 - whatever it is, load() reports it
            return
    if not isinstance(model, onnx.ModelProto):
        return
    for t in _tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            location = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise ModelLoadError(
                f"tensor '{t.name}' of the model keeps its data in external file '{location}', "
                "which was not loaded: pass the model's path instead, or load the data first "
                "(onnx.load(path) or onnx.external_data_helper.load_external_data_for_model)."
            )


def _tensors(graph: onnx.GraphProto):
    """Every TensorProto of a graph: initializers and tensor attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            yield from ([a.t] if a.HasField("t") else []) + list(a.tensors)
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(g)


def fix_shapes(proto: onnx.ModelProto, shapes: dict) -> onnx.ModelProto:
    """A copy of `proto` whose graph inputs named in `shapes` have those static shapes (a
    symbolic dimension takes the given size; a static one must agree). Raises InputError
    naming the input for an unknown name, a wrong rank or a contradicted static size."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    inputs = {i.name: i for i in out.graph.input}
    for name, dims in shapes.items():
        if name not in inputs:
            raise InputError(
                f"shapes names '{name}', which is not a graph input of the model (inputs: {', '.join(inputs)})."
            )
        shape = inputs[name].type.tensor_type.shape
        if len(shape.dim) != len(dims):
            raise InputError(f"input '{name}' has rank {len(shape.dim)}; shapes gives {list(dims)}.")
        for i, (d, n) in enumerate(zip(shape.dim, dims)):
            if d.HasField("dim_value") and d.dim_value >= 0 and d.dim_value != n:
                raise InputError(f"input '{name}' has static size {d.dim_value} in dimension {i}; shapes gives {n}.")
            d.Clear()
            d.dim_value = int(n)
    return out


def specialize(proto: onnx.ModelProto, constants: dict) -> onnx.ModelProto:
    """A copy of `proto` in which the named graph inputs are initializers with the given
    values. Raises InputError for a name that is not a graph input."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    names = {i.name for i in out.graph.input}
    unknown = sorted(set(constants) - names)
    if unknown:
        raise InputError(f"constants names {unknown}, which are not graph inputs of the model.")
    kept = [i for i in out.graph.input if i.name not in constants]
    del out.graph.input[:]
    out.graph.input.extend(kept)
    inits = [t for t in out.graph.initializer if t.name not in constants]
    del out.graph.initializer[:]
    out.graph.initializer.extend(inits + [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()])
    return out


def model_notes(prepared: onnx.ModelProto) -> list[str]:
    """The importer's notes on a prepared model (`importers.onnx.NOTES` metadata)."""
    import json

    from tritonnx.importers.onnx import NOTES

    return next((json.loads(p.value) for p in prepared.metadata_props if p.key == NOTES), [])


def _lower(
    proto: onnx.ModelProto,
    session: Session,
    pipeline: list,
    overrides: tuple,
    dumps: Path | None,
    bar: _Progress,
) -> tuple[ir.Module, onnx.ModelProto, list]:
    """Imports `proto` and runs the pipeline; returns (module, the prepared ONNX model, the
    dump texts). The model's symbols, with their size hints, are the module's `tnx.symbols`.
    A model with run-time control flow left is not imported: (None, prepared, []), for
    `compiler.program` to cut into steps."""
    prepared = prepare(proto, checked=True, control_flow_steps=True)
    if control_flow.nodes(prepared):
        return None, prepared, []
    hints = dict(session.options.size_hints)
    symbols = model_symbols(prepared)
    unknown = sorted(set(hints) - set(symbols))
    if unknown:
        raise InputError(
            f"size hints name {', '.join(unknown)}, which the model has no dynamic dimension of "
            f"(its symbols: {', '.join(symbols) or 'none'})."
        )
    with symbolic.scope({s: hints.get(s, symbolic.HINT) for s in symbols} if symbols else None):
        module = import_model(prepared, session.weights, overrides, prepared=True)
        texts = _run_pipeline(module, pipeline, dumps, bar)
    return module, prepared, texts


def _run_pipeline(module: ir.Module, pipeline: list, dumps: Path | None, bar: _Progress) -> list:
    """Runs the passes on `module`; returns [(pass name, dump text)] when `dumps`."""
    texts = [("import", dump_text(module))] if dumps else []
    for name, step in pipeline:
        bar.step(name)
        pm = PassManager("builtin.module")
        if isinstance(step, str):
            pm.add(step)
        else:
            pm.add(step, name=name, argument=name)
        try:
            pm.run(module.operation)
        except TritonnxError:
            raise
        except Exception as e:
            raise CompileError(f"pass {name} failed: {e}") from e
        if dumps:
            texts.append((name, dump_text(module)))
    return texts


def compile(
    model,
    output_dir: str | os.PathLike | None = None,
    *,
    targets: tuple[str, ...] = (),
    dump_ir: str | os.PathLike | None = None,
    override_initializers: tuple[str, ...] = (),
    constants: dict | None = None,
    progress: bool = False,
    cache: bool = True,
    precision: str = "fp32",
    shapes: dict | None = None,
    size_hints: dict | None = None,
    check_indices: bool = True,
):
    """Compiles an ONNX model (path, bytes or ModelProto; ai.onnx opsets 1 to the newest
    the installed onnx defines, 28 with onnx 1.23) to an artifact.

    output_dir: where the artifact goes. It may be absent, an empty directory or a previous
        tritonnx artifact (which it replaces); anything else raises OutputPathError and is
        left untouched (`tritonnx.compiler.paths`). The artifact is written beside its place
        and renamed into it, so a failed compile leaves nothing. None: a temporary
        directory, removed when the CompiledModel is garbage collected or the process exits.
    targets: GPU targets (`tritonnx.target.TARGETS`: "sm_80", "sm_86", "sm_89", "sm_90")
        to compile every kernel to cubin ahead of time; block sizes are then chosen for the
        first of them. Without targets, for the CPU interpreter.
    dump_ir: a directory for one numbered `.mlir` file per pass plus the Triton sources.
    override_initializers: graph inputs that also have an initializer (as older models
        have for every weight) are weights; the ones named here stay run-time inputs.
    constants: {graph input name: array} to specialize on: those inputs become
        initializers (as a shape, axes or scales input must be, for tritonnx to plan static
        shapes); the compiled model no longer takes them.
    shapes: {graph input name: [sizes]} for inputs with dynamic dimensions (ONNX dim_param
        or -1: batch, sequence, image size): the artifact is compiled for, and takes,
        exactly those shapes. Without it the dimensions stay dynamic: one artifact runs at
        any sizes; kernels take the sizes as arguments and the runtime computes grids and
        the memory plan once per set of sizes (`tritonnx.symbolic`). A size the compiler
        cannot express over the inputs' dimensions raises UnsupportedModelError naming
        the node; then give `shapes`.
    size_hints: {symbol: size}: the size the block-size heuristics assume for a dynamic
        dimension (default `tritonnx.symbolic.HINT`, 128); e.g. {"seq": 512}.
    progress: show a progress bar, which counts the passes and then the kernels compiled to
        cubin, once the compile has run for a second.
    precision: "fp32" (default), "tf32", "fp16" or "bf16": the autocast pass
        (`tritonnx.passes.autocast`); inputs and outputs keep the model's dtypes.
    check_indices: gather and scatter indices that come from data raise IndexError at run
        time when out of range (`tritonnx.runtime.checks`); False drops the check (loads stay
        masked, so memory is safe; the result for a bad index is then unspecified).
    cache: serve a compile done before with the same model, options and tritonnx version
        from the compile cache (`tritonnx.compiler.cache`), and store new ones there. A
        compile with `dump_ir` always runs the passes.
    Returns a `tritonnx.runtime.CompiledModel`. Raises ModelLoadError, UnsupportedModelError,
    CompileError, InputError (a wrong `shapes` or `constants` entry) or OutputPathError (an
    `output_dir` tritonnx may not replace) with a one-paragraph message.
    """
    options = CompileOptions(
        targets=tuple(targets),
        precision=precision,
        check_indices=check_indices,
        override_initializers=tuple(override_initializers),
        size_hints=tuple((size_hints or {}).items()),
    )  # checks the targets and hints
    _refuse_unloaded_external_data(model)
    proto = load(model)
    if shapes:
        proto = fix_shapes(proto, shapes)
    if constants:
        proto = specialize(proto, constants)
    dumps = Path(dump_ir) if dump_ir else None
    if dumps is not None:
        paths.check_dump_dir(dumps)
    if output_dir is not None:
        final = Path(os.path.abspath(output_dir))
        paths.check_output(final)  # refused before any work; checked again when it is replaced
        paths.reclaim(final)
    else:
        final = paths.temporary_output()
    work = paths.work_dir(final)
    cache_key = None
    if cache and dumps is None:
        cache_key = compile_cache.key(proto, options)
        hit = compile_cache.lookup(cache_key)
        if hit is not None:
            try:
                compile_cache.copy_out(*hit, work)
            except OSError:  # evicted by another process meanwhile: compile
                paths.remove_tree(work)
                work = paths.work_dir(final)
            else:
                return _finish(work, final, output_dir, cached=True)
    session = Session(options=options)
    token = use_session(session)
    pipeline = stages()
    bar = _Progress(len(pipeline) + 2, progress)
    overrides = options.override_initializers
    # cubin compilers start now: they import Triton while the passes run
    workers = aot.Workers() if targets else None
    try:
        with make_context(), ir.Location.unknown():
            module, prepared, texts = _lower(proto, session, pipeline, overrides, dumps, bar)
        if module is None:  # run-time control flow: a program of compiled steps

            def compile_step(model, out: Path, where: str):
                return compile(
                    model,
                    out,
                    targets=targets,
                    dump_ir=dumps / where if dumps else None,
                    cache=cache,
                    precision=precision,
                    check_indices=check_indices,
                )

            bar.step("compiling the control-flow steps")
            program.write(work, prepared, proto, compile_step)
        else:
            with make_context(), ir.Location.unknown():
                bar.step("writing artifact")
                with symbolic.scope(symbolic.module_hints(module.operation)):
                    artifact.write(
                        work,
                        module,
                        session,
                        proto,
                        targets,
                        progress=bar,
                        bounds=bounds(prepared),
                        workers=workers,
                        notes=model_notes(prepared),
                    )
        if dumps:
            dumps.mkdir(parents=True, exist_ok=True)
            for i, (name, text) in enumerate(texts):
                (dumps / f"{i:02d}-{name.replace(',', '-')}.mlir").write_text(text)
            for f in (work / "kernels").glob("*.py"):  # none for a program: each step has its own
                shutil.copy(f, dumps / f.name)
        if cache_key is not None:
            compile_cache.store(cache_key, work)
        bar.step()
    except BaseException:
        _discard(work, final, output_dir)
        raise
    finally:
        bar.close()
        _session.reset(token)
        if workers is not None:
            workers.close()
    return _finish(work, final, output_dir)


def _finish(work: Path, final: Path, output_dir, cached: bool = False):
    """Renames the finished artifact `work` into `final` (`paths.replace`) and opens it. An
    artifact nobody asked to keep (no `output_dir`) is removed when its CompiledModel is
    garbage collected or the process exits."""
    from tritonnx.runtime import open_artifact

    try:
        paths.replace(work, final)
        model = open_artifact(final, cached=cached)
    except BaseException:
        _discard(work, final, output_dir)
        raise
    if output_dir is None:
        weakref.finalize(model, paths.remove_tree, final)
    return model


def _discard(work: Path, final: Path, output_dir) -> None:
    """After a failure: removes the work directory, and the temporary output of a compile
    without `output_dir` (a user's output path is never removed)."""
    paths.remove_tree(work)
    if output_dir is None:
        paths.remove_tree(final)
