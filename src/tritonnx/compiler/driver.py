"""`tritonnx.compile()`: ONNX file -> artifact directory -> CompiledModel."""

from __future__ import annotations

import dataclasses
import hashlib
import keyword
import math
import os
import re
import shutil
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from mlir import ir
from mlir.passmanager import PassManager
from onnx import numpy_helper

from tritonnx import symbolic
from tritonnx.compiler import aot, artifact, paths
from tritonnx.compiler import cache as compile_cache
from tritonnx.compiler.cost import bounds
from tritonnx.compiler.options import CompileOptions
from tritonnx.compiler.pipeline import stages
from tritonnx.dialects import make_context
from tritonnx.errors import CompileError, InputError, ModelLoadError, TritonnxError, UnsupportedModelError
from tritonnx.importers.onnx import import_model, load, prepare
from tritonnx.passes import Session, _session, use_session

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

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
    """A rich progress bar that appears only once the compile has run for a second."""

    def __init__(self, total: int, enabled: bool):
        self.start, self.total, self.enabled = time.perf_counter(), total, enabled
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.done = 0

    def step(self, label: str):
        self.done += 1
        if not self.enabled:
            return
        if self.bar is None and time.perf_counter() - self.start > 1.0:
            from rich.progress import Progress

            bar = self.bar = Progress(transient=True)
            bar.start()
            self.task = bar.add_task("compiling", total=self.total, completed=self.done - 1)
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.done, description=label)

    def close(self):
        if self.bar is not None:
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
            if d.HasField("dim_value") and d.dim_value != n:
                raise InputError(f"input '{name}' has static size {d.dim_value} in dimension {i}; shapes gives {n}.")
            d.Clear()
            d.dim_value = int(n)
    return out


RESERVED = {"tl", "triton", "float", "range", "int"}  # names a kernel's source uses
PRINTED = re.compile(r"(v|k|acc|out|in\d+_)\d*")  # lower-to-triton's value names


def dynamic_dims(proto: onnx.ModelProto) -> dict[str, list[tuple[str, int]]]:
    """{symbol: [(input name, dimension), ...]} for the symbolic dimensions of the graph
    inputs (ONNX dim_param; an unnamed one is named after its input and position). Names
    become Python identifiers: they are kernel arguments."""
    inits = {t.name for t in proto.graph.initializer}
    out: dict[str, list[tuple[str, int]]] = {}
    for inp in proto.graph.input:
        if inp.name in inits or not inp.type.tensor_type.HasField("shape"):
            continue
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            name = re.sub(r"\W", "_", d.dim_param or f"{inp.name}_{i}")
            if not name.isidentifier() or keyword.iskeyword(name) or name in RESERVED or PRINTED.fullmatch(name):
                name = f"s_{name}"
            out.setdefault(name, []).append((inp.name, i))
    return out


def _sample_shapes(proto: onnx.ModelProto, dims: dict, samples: dict) -> dict:
    """{input: [sizes]} with every symbolic dimension at its sample size."""
    shapes = {}
    for inp in proto.graph.input:
        if any(inp.name == i for uses in dims.values() for i, _ in uses):
            shapes[inp.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in inp.type.tensor_type.shape.dim]
    for name, uses in dims.items():
        for i, d in uses:
            shapes[i][d] = samples[name]
    return shapes


def _static_sizes(proto: onnx.ModelProto) -> set[int]:
    """Every static size the model states: weight dims, static input and value_info dims,
    and the values of small integer constants (Reshape targets and the like)."""
    sizes = {int(d) for t in proto.graph.initializer for d in t.dims}
    small = [
        t
        for t in proto.graph.initializer
        if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and math.prod(t.dims) <= 64
    ]
    small += [
        a.t
        for n in proto.graph.node
        if n.op_type == "Constant"
        for a in n.attribute
        if a.name == "value"
        and a.t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        and math.prod(a.t.dims) <= 64
    ]
    sizes |= {abs(int(v)) for t in small for v in numpy_helper.to_array(t).reshape(-1)}
    for vi in list(proto.graph.input) + list(proto.graph.value_info) + list(proto.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            sizes |= {d.dim_value for d in vi.type.tensor_type.shape.dim if d.HasField("dim_value")}
    return sizes


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


def _lower(
    proto: onnx.ModelProto,
    session: Session,
    pipeline: list,
    overrides: tuple,
    samples: dict | None,
    dumps: Path | None,
    bar: _Progress,
) -> tuple[ir.Module, onnx.ModelProto, list]:
    """Imports `proto` and runs the pipeline; returns (module, the prepared ONNX model, the
    dump texts). `samples`: the sizes of a dynamic compile's symbols (`tnx.symbols`)."""
    prepared = prepare(proto, checked=True)
    module = import_model(prepared, session.weights, overrides, prepared=True)
    if samples:
        module.operation.attributes["tnx.symbols"] = ir.DictAttr.get(
            {k: ir.IntegerAttr.get(ir.IntegerType.get_signless(64), v) for k, v in samples.items()}
        )
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
    return module, prepared, texts


def _fingerprint(module: ir.Module, session: Session) -> dict:
    """What must not depend on a dynamic compile's samples: the kernel sources, the plan's
    launches, buffers and guards (sizes as expressions) and the weights."""
    plan, weights = artifact.build_plan(module, session)
    launches = [{k: v for k, v in launch.items() if k not in ("flops", "notes")} for launch in plan["launches"]]
    return {
        "sources": sorted(session.sources.values()),
        "launches": launches,
        "buffers": plan["buffers"],
        "guards": plan.get("guards", []),
        "weights": {k: (v.shape, hashlib.sha256(_raw(v)).hexdigest()) for k, v in weights.items()},
    }


def _raw(v: np.ndarray) -> memoryview:
    """An array's bytes (no copy for a C-contiguous array, such as a weight mapped from
    external data)."""
    return np.ascontiguousarray(v).reshape(-1).view(np.uint8).data


def _same(a: dict, b: dict, samples: list[dict]) -> None:
    """Raises CompileError saying where two fingerprints of a dynamic compile differ."""
    at = [", ".join(f"{k}={v}" for k, v in s.items()) for s in samples]
    what = None
    if a["sources"] != b["sources"]:
        for x, y in zip(a["sources"], b["sources"]):
            if x != y:
                line = next(
                    (
                        f"{l1.strip()!r} vs {l2.strip()!r}"
                        for l1, l2 in zip(x.splitlines(), y.splitlines())
                        if l1 != l2 and not l1.startswith("def ")
                    ),
                    "",
                )
                what = f"a kernel differs ({line})"
                break
        what = what or "the kernels differ"
    elif a["weights"] != b["weights"]:
        what = (
            "a weight depends on the sizes ("
            + next(k for k in a["weights"] if a["weights"][k] != b["weights"].get(k))
            + ")"
        )
    elif a != b:
        what = "the launch plan differs"
    if what:
        raise CompileError(
            f"dynamic shapes: compiled at {at[0]} and at {at[1]}, {what}: some size of this model "
            "is not a product of its dynamic dimensions and constants. Compile with static "
            "shapes (`shapes=`, CLI --shape)."
        )


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
    dynamic: bool = False,
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
    shapes: {graph input name: [sizes]} for inputs with symbolic dimensions (batch,
        sequence): the artifact is compiled for, and takes, exactly those shapes.
    dynamic: keep the symbolic dimensions of the inputs (ONNX dim_param, e.g. batch and
        sequence) that `shapes` does not fix: one artifact runs at any sizes; kernels take
        the sizes as arguments (`tritonnx.symbolic`). Raises CompileError when a size of
        the model is not a product of those dimensions and constants.
    progress: show a progress bar once the compile has run for a second.
    precision: "fp32" (default), "tf32", "fp16" or "bf16": the autocast pass
        (`tritonnx.passes.autocast`); inputs and outputs keep the model's dtypes.
    check_indices: Gather/GatherElements indices that come from data raise IndexError at run
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
    )  # checks the targets
    _refuse_unloaded_external_data(model)
    proto = load(model)
    if shapes:
        proto = fix_shapes(proto, shapes)
    if constants:
        proto = specialize(proto, constants)
    dims = dynamic_dims(proto) if dynamic else {}
    options = dataclasses.replace(options, dynamic=tuple(dims))
    picked = symbolic.pick_samples(list(dims), _static_sizes(proto)) if dims else []
    samples: list[dict | None] = [*picked] or [None]  # [None]: a static compile has no symbols
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
    bar = _Progress(len(pipeline) * (2 if dims else 1) + 2, progress)
    overrides = options.override_initializers
    # cubin compilers start now: they import Triton while the passes run
    workers = aot.Workers() if targets else None
    try:
        with make_context(), ir.Location.unknown():
            first = fix_shapes(proto, _sample_shapes(proto, dims, picked[0])) if dims else proto
            with symbolic.scope(samples[0]):
                try:
                    module, prepared, texts = _lower(first, session, pipeline, overrides, samples[0], dumps, bar)
                except UnsupportedModelError as e:
                    if not dims:
                        raise
                    raise UnsupportedModelError(
                        f"{e} (a dynamic compile runs the model at sample sizes "
                        f"{samples[0]}; a model that cannot take them needs `shapes=`)",
                        e.nodes,
                    ) from None
                expected = _fingerprint(module, session) if dims else {}
            if dims:  # the same model at other sample sizes must give the same kernels and plan
                check = Session(options=options)
                inner = use_session(check)
                try:
                    with symbolic.scope(samples[1]):
                        again, _, _ = _lower(
                            fix_shapes(proto, _sample_shapes(proto, dims, picked[1])),
                            check,
                            pipeline,
                            overrides,
                            samples[1],
                            None,
                            bar,
                        )
                        _same(expected, _fingerprint(again, check), picked)
                finally:
                    _session.reset(inner)
            bar.step("writing artifact")
            with symbolic.scope(samples[0]):
                artifact.write(
                    work,
                    module,
                    session,
                    proto,
                    targets,
                    on_kernel=bar.step if targets else None,
                    bounds=bounds(prepared),
                    workers=workers,
                )
        if dumps:
            dumps.mkdir(parents=True, exist_ok=True)
            for i, (name, text) in enumerate(texts):
                (dumps / f"{i:02d}-{name.replace(',', '-')}.mlir").write_text(text)
            for f in (work / "kernels").glob("*.py"):
                shutil.copy(f, dumps / f.name)
        if cache_key is not None:
            compile_cache.store(cache_key, work)
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
    from tritonnx.runtime import CompiledModel

    try:
        paths.replace(work, final)
        model = CompiledModel(final, cached=cached)
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
