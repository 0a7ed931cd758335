"""Runs an artifact: loads plan.json, weights and kernels, launches kernels in order.

Does not import MLIR. On a machine where torch sees a CUDA device the kernels run there
(from the artifact's cubins when one matches the device, else compiled by Triton's JIT);
otherwise through Triton's interpreter on torch CPU tensors. The interpreter is chosen per
kernel, when its source is executed (`triton.jit` decorates with the interpreter while
Triton's `knobs.runtime.interpret` is set in a scope around that one `exec`), never through
a process-wide switch: torch, triton, transformers and tritonnx may be imported in any order.

On a GPU a run's launches are captured into a CUDA graph, once per set of input sizes, and
replayed: one graph launch instead of one Python launch per kernel (`CompiledModel`,
`cuda_graphs`).
"""

from __future__ import annotations

import contextlib
import linecache
import math
import os
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from tritonnx.errors import ArtifactError, InputError
from tritonnx.runtime import checks
from tritonnx.runtime import format as artifact_format
from tritonnx.runtime.tensors import _device, to_numpy, to_torch

__all__ = ["CompiledModel", "aligned", "load", "open_artifact", "to_numpy", "to_torch"]

# Triton's interpreter runs a launch by patching `triton.language` process-wide: one launch
# at a time in the whole process, whichever model it belongs to
_INTERPRETER_LOCK = threading.Lock()
_NO_LOCK = contextlib.nullcontext()


ALIGNMENT = 16  # bytes: every pointer a kernel gets is a multiple of it (`launch["divisibility_16"]`)


def aligned(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor`, or a copy of it when its data does not start at a multiple of ALIGNMENT
    bytes (a view into a larger buffer): the cubins are compiled assuming aligned pointers
    (`tritonnx.runtime.cubin.attrs`), as Triton's JIT specializes on them."""
    return tensor if tensor.data_ptr() % ALIGNMENT == 0 else tensor.clone()


_DECORATE_LOCK = threading.Lock()  # the interpret knob is read by `triton.jit` while it decorates


def _exec_kernel(source: str, filename: str, module: types.ModuleType, interpret: bool) -> None:
    """Executes a kernel source into `module`; with `interpret`, its @triton.jit functions
    become Triton's interpreter functions (`triton.runtime.interpreter.InterpretedFunction`)
    whatever the process's TRITON_INTERPRET, and the knob is restored after."""
    code = compile(source, filename, "exec")
    if not interpret:
        exec(code, module.__dict__)  # noqa: S102 -- verified kernel source
        return
    from triton import knobs

    with _DECORATE_LOCK, knobs.runtime.scope():
        knobs.runtime.interpret = True
        exec(code, module.__dict__)  # noqa: S102 -- verified kernel source


@contextlib.contextmanager
def _jit_calls_interpreted():
    """While the interpreter runs a kernel: Triton's own @jit library functions (`tl.zeros`,
    `tl.sum`'s combine functions, ...) run interpreted too. Imported in compiled mode they are
    JITFunctions, which refuse a call outside a compiled kernel; the interpreter patches
    `triton.language` for the launch in the same way, and both patches end with it. Held
    under _INTERPRETER_LOCK, so no other launch sees them."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    if os.environ.get("TRITON_INTERPRET") == "1":  # triton.language was decorated interpreted
        yield
        return
    original = JITFunction.__call__
    wrapped: dict = {}

    def call(self, *args, **kwargs):
        if self.fn not in wrapped:
            wrapped[self.fn] = InterpretedFunction(self.fn)
        return wrapped[self.fn](*args, **kwargs)

    JITFunction.__call__ = call
    try:
        yield
    finally:
        JITFunction.__call__ = original


class CompiledModel:
    """A compiled artifact, ready to run.

    `run({name: array}) -> {name: array}` and `model(*arrays)` take numpy arrays or torch
    tensors of the model's input shapes and dtypes; numpy in gives numpy out.
    Raises InputError (a ValueError) naming the input when a name, shape or dtype is wrong.

    Loading checks the artifact (`tritonnx.runtime.format`): its format version, the plan's
    structure, and the SHA-256 of each kernel source, cubin and the weights before that file
    is imported or loaded; ArtifactError says what failed. An artifact is code: its kernels
    are Python that runs when loaded, so load artifacts only from a trusted source.

    CUDA graphs (on a GPU; `cuda_graphs=True`, the default): the first run at a set of input
    sizes runs the launches one by one (Triton's JIT compiles then, which a capture cannot
    hold); the second captures them into a `torch.cuda.CUDAGraph` over static input copies,
    the arena and static outputs, and every later run at those sizes copies its inputs in
    and replays the graph. A plan with a step that reads the device from the host
    (`plan["host_reads"]`) is never captured, nor a run that autotunes. `cuda_graphs=False`
    launches kernel by kernel always. Without a GPU there is nothing to capture.

    Threads: `run` may be called from many threads on one model; the runs take turns (a
    lock per model, since all runs share one arena of intermediates, and one lock for the
    whole process around Triton's CPU interpreter, which is not re-entrant) and each gives
    exactly the result it would give alone. Outputs are fresh tensors, never arena views.
    """

    def __init__(self, path: str | os.PathLike, cached: bool = False, cuda_graphs: bool = True):
        self.path = Path(path)
        self.cuda_graphs = cuda_graphs
        self.cached = cached  # True when `tritonnx.compile` served it from the compile cache
        self.plan = artifact_format.load_plan(self.path)
        self._lock = threading.RLock()
        self.device = _device()
        self._kernels: dict = {}  # kernel -> (its launchable form for the plan's block sizes, is it a cubin)
        self._jit: dict = {}  # kernel -> its @triton.jit function
        self._weights = None
        self._arena: torch.Tensor | None = None  # one byte buffer for all intermediates, grown to the largest plan run
        self._views: dict = {}  # sizes -> {buffer name: its view into the arena}
        self._plans: dict = {}  # sizes of the dynamic dimensions -> the plan at those sizes
        self._choices: dict[str, int] = {}  # kernel -> the autotune candidate it runs with
        self._tune: int = 0
        self._tuned: dict = {}
        self._graphs: dict = {}  # sizes -> None (ran once, uncaptured) or its _Graph

    @property
    def dynamic(self) -> bool:
        """True when the artifact takes dynamic sizes (`plan["symbols"]`)."""
        return bool(self.plan.get("symbols"))

    def _intermediates(self, plan: dict, key) -> dict:
        """Views into one arena for every intermediate buffer, placed by the memory plan
        (`plan["memory"]`, see `tritonnx.runtime.memory_plan`). The arena is allocated at
        the first run and reused by every later one (grown when a dynamic model runs at
        larger sizes)."""
        import torch

        if key in self._views:
            return self._views[key]
        memory = plan["memory"]
        if self._arena is None or self._arena.numel() < memory["arena_bytes"]:
            self._arena = torch.empty(memory["arena_bytes"], dtype=torch.uint8, device=self.device)
            self._views.clear()  # views of the old arena
            self._graphs.clear()  # graphs captured over the old arena
        views = {}
        for b in plan["buffers"]:
            off = memory["offsets"].get(b["name"])
            if off is None:
                continue
            dtype = getattr(torch, b["dtype"])
            n = math.prod(b["shape"]) * dtype.itemsize
            views[b["name"]] = self._arena[off : off + n].view(dtype).view(b["shape"])
        self._views[key] = views
        return views

    def plan_for(self, shapes: dict[str, list[int]]) -> tuple[dict, tuple]:
        """(the plan at these input shapes, its key): the plan itself for a static model;
        for a dynamic one, the plan with the symbols bound from `shapes` (see
        `tritonnx.runtime.dynamic`; no compilation, computed once per set of sizes).
        Raises InputError naming the input whose shape disagrees."""
        if not self.dynamic:
            for spec in self.plan["inputs"]:
                got = list(shapes[spec["name"]])
                if got != spec["shape"]:
                    raise InputError(
                        f"input '{spec['name']}' has shape {got} and dtype {spec['dtype']}; "
                        f"expected shape {spec['shape']} and dtype {spec['dtype']}."
                    )
            return self.plan, ()
        from tritonnx.runtime import dynamic

        values = dynamic.bind(self.plan, shapes)
        key = tuple(values[s] for s in self.plan["symbols"])
        if key not in self._plans:
            self._plans[key] = dynamic.concretize(self.plan, values)
        return self._plans[key], key

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.plan["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.plan["outputs"]]

    @property
    def launches(self) -> list[dict]:
        return self.plan["launches"]

    def _kernel_function(self, name: str):
        """The @triton.jit function `name` of kernels/NAME.py, executed from the bytes whose
        SHA-256 matched the plan (so what runs is what was checked). triton.jit reads the
        source through `inspect`, which finds it in linecache under the file's path."""
        rel = f"kernels/{name}.py"
        source = artifact_format.read_verified(self.path, self.plan, rel).decode()
        filename = str((self.path / rel).resolve())
        # mtime None: a fixed entry that linecache.checkcache leaves alone
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType(f"tritonnx_kernel_{name}")
        module.__file__ = filename
        _exec_kernel(source, filename, module, interpret=self.device == "cpu")
        fn = module.__dict__.get(name)
        if fn is None:
            raise ArtifactError(f"{self.path}: {rel} defines no kernel {name}.")
        return fn

    def _kernel(self, launch: dict):
        """(the launchable kernel of `launch`, whether it is an ahead-of-time binary): the
        cubin of the launch's own block sizes where the artifact has one for this GPU, else
        the @triton.jit function (an autotune candidate's other block sizes are compiled
        by Triton when first launched)."""
        name = launch["kernel"]
        if "cubins" not in launch:  # no binaries, or a candidate: no binary of its block sizes
            if name not in self._jit:
                self._jit[name] = self._kernel_function(name)
            return self._jit[name], False
        if name not in self._kernels and self.device == "cuda":
            from tritonnx.runtime import cubin

            target = cubin.current_target()
            if target in launch.get("cubins", {}):
                for suffix in ("cubin", "json"):
                    artifact_format.verify_file(self.path, self.plan, f"kernels/{name}.{target}.{suffix}")
                self._kernels[name] = (
                    cubin.load(
                        self._kernel_function(name),
                        self.path / "kernels",
                        name,
                        target,
                        launch["signature"],
                        launch.get("constexprs"),
                        launch.get("divisibility_16", ()),
                    ),
                    True,
                )
        if name not in self._kernels:
            self._kernels[name] = (self._kernel_function(name), False)
        return self._kernels[name]

    def _load_weights(self):
        """{buffer: tensor} of the weights, on the device. The file is checked against its
        SHA-256 in chunks and then memory-mapped by safetensors (copy-on-write: on the CPU the
        tensors are the mapping, never a second copy of the file)."""
        if self._weights is None:
            from safetensors.torch import load_file

            artifact_format.verify_file(self.path, self.plan, "weights.safetensors")
            loaded = load_file(str(self.path / "weights.safetensors"))
            self._weights = {k: v.to(self.device) for k, v in loaded.items()}
        return self._weights

    def _check(self, feeds: dict):
        """(the plan at the inputs' sizes, its key, {buffer: tensor}); raises InputError
        naming a wrong, missing or unknown input, or one that is not an array."""
        import torch

        expected = {i["name"]: i for i in self.plan["inputs"]}
        if not isinstance(feeds, dict):
            raise InputError(
                f"inputs must be a dict {{name: array}}; got {type(feeds).__name__}. The model takes "
                + ", ".join(f"'{n}' {e['dtype']}{e['shape']}" for n, e in expected.items())
                + "."
            )
        unknown = [n for n in feeds if n not in expected]
        missing = [n for n in expected if n not in feeds]
        if unknown or missing:
            raise InputError(
                f"wrong inputs: unknown {unknown}, missing {missing}; the model takes "
                + ", ".join(f"'{n}' {e['dtype']}{e['shape']}" for n, e in expected.items())
                + "."
            )
        given = {}
        for name, value in feeds.items():
            if not isinstance(value, torch.Tensor):
                array = np.asarray(value) if value is not None else None
                if array is None or array.dtype == object or array.dtype.kind not in "biufcV":
                    raise InputError(
                        f"input '{name}' is {type(value).__name__}, not an array; expected a numpy "
                        f"array or torch tensor of dtype {expected[name]['dtype']} and shape "
                        f"{expected[name]['shape']}."
                    )
                value = to_torch(array)
            given[name] = value
        for name, t in given.items():
            dtype = str(t.dtype).replace("torch.", "")
            if dtype != expected[name]["dtype"]:
                raise InputError(
                    f"input '{name}' has dtype {dtype}; expected {expected[name]['dtype']} "
                    f"(shape {expected[name]['shape']})."
                )
        plan, key = self.plan_for({name: list(t.shape) for name, t in given.items()})
        tensors = {expected[name]["buffer"]: aligned(t.to(self.device).contiguous()) for name, t in given.items()}
        return plan, key, tensors

    def run(self, feeds: dict, into: dict | None = None) -> dict:
        """Runs the model on `feeds` ({input name: numpy array or torch tensor}); returns
        {output name: array} (numpy in, numpy out). `into`: {output name: torch tensor on the
        model's device, of the output's shape and dtype at these sizes} that those outputs
        are written into, and returned as (a program's scan outputs: slices of the stacked
        result); the kernels write a contiguous one whose data starts at a multiple of
        ALIGNMENT bytes directly, others get a copy. Safe to call from many threads: calls
        take turns (see the class docstring). Raises InputError for a wrong input or `into`."""
        import torch

        as_numpy = not any(isinstance(v, torch.Tensor) for v in feeds.values()) if isinstance(feeds, dict) else True
        with self._lock, self._interpreter():
            plan, key, tensors = self._check(feeds)
            direct = self._into(plan, into or {})
            if self.graph_blocker(plan) is None:
                out = self._run_graphed(plan, key, tensors)
            else:
                out = self._run_launches(plan, key, tensors, direct=direct)
        for name, t in (into or {}).items():
            if out[name] is not t:
                t.copy_(out[name])
                out[name] = t
        return {k: to_numpy(v) for k, v in out.items()} if as_numpy and not into else out

    def _into(self, plan: dict, into: dict) -> dict:
        """{output buffer: tensor of `into` the kernels can write directly} (see `run`).
        Raises InputError for a name that is not an output, or a tensor of another shape,
        dtype or device."""
        outputs = {o["name"]: o for o in plan["outputs"]}
        specs = {b["name"]: b for b in plan["buffers"]}
        direct = {}
        for name, t in into.items():
            if name not in outputs:
                raise InputError(f"into: '{name}' is not an output of the model (its outputs: {list(outputs)}).")
            spec = specs[outputs[name]["buffer"]]
            dtype = str(t.dtype).replace("torch.", "")
            if list(t.shape) != list(spec["shape"]) or dtype != spec["dtype"] or t.device.type != self.device:
                raise InputError(
                    f"into: output '{name}' is {spec['dtype']}{list(spec['shape'])} on {self.device}; got "
                    f"{dtype}{list(t.shape)} on {t.device.type}."
                )
            if spec["kind"] == "output" and t.is_contiguous() and t.data_ptr() % ALIGNMENT == 0:
                direct[spec["name"]] = t
        return direct

    def run_layerwise(self, feeds: dict) -> tuple[dict, list[dict]]:
        """Runs like `run`, launch by launch (no CUDA graph), keeping what each launch wrote.
        Returns (outputs, steps): steps[i] = {"launch": i, "kernel", "nodes" (the ONNX nodes
        it computes), "outputs": {buffer name: numpy copy of it right after the launch}}
        for each launch of the plan at these sizes, in order (an empty launch, with a 0 in
        its grid, has the buffers as they were). For layerwise comparisons
        (`tritonnx run --check-layers`). Raises InputError for a wrong input."""
        steps: list[dict] = []

        def keep(i: int, launch: dict, env: dict) -> None:
            outs = [b for b, role in zip(launch["buffers"], launch.get("roles", [])) if role == "out"]
            outs = outs or launch["buffers"][-1:]
            steps.append(
                {
                    "launch": i,
                    "kernel": launch["kernel"],
                    "nodes": list(launch.get("nodes", [])),
                    "outputs": {b: to_numpy(env[b].clone()) for b in outs},
                }
            )

        with self._lock, self._interpreter():
            plan, key, tensors = self._check(feeds)
            out = self._run_launches(plan, key, tensors, after=keep)
        return {k: to_numpy(v) for k, v in out.items()}, steps

    def _interpreter(self):
        # Triton's interpreter is one per process: one CPU launch at a time
        return _INTERPRETER_LOCK if self.device == "cpu" else _NO_LOCK

    def graph_blocker(self, plan: dict | None = None) -> str | None:
        """Why runs of `plan` (default: the artifact's) are not captured into a CUDA graph,
        or None when they are: no GPU, `cuda_graphs` off, an autotuning run, or a step that
        reads the device from the host (`plan["host_reads"]`: the launches after it depend
        on what it read)."""
        plan = self.plan if plan is None else plan
        if self.device != "cuda":
            return "no CUDA device: kernels run on Triton's CPU interpreter"
        if not self.cuda_graphs:
            return "CUDA graphs are off (cuda_graphs=False)"
        if self._tune:
            return "autotuning: each candidate is timed launch by launch"
        if plan.get("host_reads"):
            return "the plan reads the device from the host at " + ", ".join(map(str, plan["host_reads"]))
        return None

    def _run_launches(self, plan: dict, key, tensors: dict, after=None, direct: dict | None = None) -> dict:
        """{output buffer: fresh tensor} of one run, launch by launch (`after(i, launch,
        env)` after each; `direct`: {output buffer: the tensor to write it into}); raises
        IndexOutOfRangeError from the index checks."""
        env = dict(self._load_weights())
        env.update(self._intermediates(plan, key))
        env.update(tensors)
        env.update(direct or {})
        env.update(checks.buffers(plan, self.device))  # index checks: zeroed before the launches
        specs = {b["name"]: b for b in plan["buffers"]}
        # the interpreter computes masked-off lanes too (e.g. 0/0); their values are discarded
        with np.errstate(all="ignore"), _jit_calls_interpreted() if self.device == "cpu" else _NO_LOCK:
            self._launch_all(plan, env, specs, after)
        checks.verify(plan, env)  # IndexError naming the node of an out-of-range index
        return self._outputs(plan, env, specs)

    @staticmethod
    def _outputs(plan: dict, env: dict, specs: dict, static: bool = False) -> dict:
        """{output name: a fresh tensor}: an output buffer as it is (allocated for this run),
        a copy of a graph input or weight returned as it is, and with `static` (a CUDA
        graph's outputs, which the next replay overwrites) a copy of every one."""
        return {
            o["name"]: env[o["buffer"]]
            if specs[o["buffer"]]["kind"] == "output" and not static
            else env[o["buffer"]].clone()
            for o in plan["outputs"]
        }

    def _run_graphed(self, plan: dict, key, tensors: dict) -> dict:
        """One run through the CUDA graph of these sizes: the first run at them goes launch
        by launch (it compiles the kernels), the second captures the graph, later ones
        replay it."""
        if key not in self._graphs:
            self._graphs[key] = None
            return self._run_launches(plan, key, tensors)
        graph = self._graphs[key]
        if graph is None:
            graph = self._graphs[key] = self._capture(plan, key, tensors)
        return graph.replay(plan, tensors)

    def _capture(self, plan: dict, key, tensors: dict) -> _Graph:
        import torch

        env = dict(self._load_weights())
        env.update(self._intermediates(plan, key))
        static_in = {b: torch.empty_like(t) for b, t in tensors.items()}
        env.update(static_in)
        flags = checks.buffers(plan, self.device)
        env.update(flags)
        specs = {b["name"]: b for b in plan["buffers"]}
        for b in plan["buffers"]:  # outputs and anything else the plan does not place: static
            if b["name"] not in env:
                env[b["name"]] = torch.empty(b["shape"], dtype=getattr(torch, b["dtype"]), device=self.device)
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            for flag in flags.values():
                flag.zero_()  # index checks: zeroed at every replay
            self._launch_all(plan, env, specs)
        return _Graph(graph, static_in, env, specs)

    @property
    def graphs_captured(self) -> int:
        """How many CUDA graphs this model holds (one per set of input sizes run at least
        twice on a GPU with `cuda_graphs` on)."""
        return sum(g is not None for g in self._graphs.values())

    def use_candidate(self, kernel: str, index: int | None) -> None:
        """Runs every launch of `kernel` with its autotune candidate `index` (see the choose-blocks
        pass; `launch["candidates"]`) instead of the tiling the compiler chose; None goes
        back to that tiling."""
        if index is None:
            self._choices.pop(kernel, None)
            return
        launch = next(la for la in self.plan["launches"] if la["kernel"] == kernel)
        if not 0 <= index < len(launch.get("candidates", [])):
            raise InputError(
                f"kernel {kernel} has {len(launch.get('candidates', []))} autotune candidates; got index {index}."
            )
        self._choices[kernel] = index

    def autotune(self, feeds: dict, reps: int = 20) -> dict:
        """Times, on a CUDA device, each dot kernel's tiling against its autotune candidates
        on `feeds` (median of `reps` launches with CUDA events) and keeps the fastest for
        every later run. Returns {kernel: (block, num_warps, num_stages) kept}; {} without a
        GPU, where there is nothing to measure. Launches that write over an input in place
        keep the compiler's tiling (timing would run them repeatedly)."""
        if self.device != "cuda":
            return {}
        self._tune, self._tuned = reps, {}
        try:
            self.run(feeds)
        finally:
            self._tune = 0
        return self._tuned

    def _launch(self, cfg: dict, args: list) -> None:
        kernel, aot = self._kernel(cfg)
        constexprs = cfg.get("constexprs", {})
        if aot:  # a CompiledKernel: block sizes, warps and stages are baked into the binary
            kernel[tuple(cfg["grid"]) + (1,) * (3 - len(cfg["grid"]))](*args, *constexprs.values())
        else:
            kernel[tuple(cfg["grid"])](*args, **constexprs, num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])

    def _time(self, cfg: dict, args: list) -> float:
        import statistics

        import torch

        self._launch(cfg, args)  # compiles it
        times = []
        for _ in range(self._tune):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self._launch(cfg, args)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times)

    def _launch_all(self, plan: dict, env: dict, specs: dict, after=None) -> None:
        import torch

        in_place = {out for out, _ in plan["memory"].get("in_place", [])}
        for i, launch in enumerate(plan["launches"]):
            args = []
            for b in launch["buffers"]:
                if b not in env:
                    s = specs[b]
                    env[b] = torch.empty(s["shape"], dtype=getattr(torch, s["dtype"]), device=self.device)
                args.append(env[b])
            args += launch.get("symbol_values", [])  # sizes of dynamic dimensions
            if 0 in launch["grid"]:  # an empty output: nothing to compute
                if after:
                    after(i, launch, env)
                continue
            if (
                self._tune
                and launch.get("candidates")
                and launch["kernel"] not in self._tuned
                and launch["buffers"][-1] not in in_place
            ):
                options = [launch] + launch["candidates"]
                best = min(range(len(options)), key=lambda i: self._time(options[i], args))
                cfg = options[best]
                self._tuned[launch["kernel"]] = (cfg["block"], cfg["num_warps"], cfg["num_stages"])
                if best:
                    self._choices[launch["kernel"]] = best - 1
            choice = self._choices.get(launch["kernel"])
            self._launch(launch if choice is None else launch["candidates"][choice], args)
            if after:
                after(i, launch, env)

    def __call__(self, *arrays):
        if len(arrays) != len(self.plan["inputs"]):
            raise InputError(
                f"the model takes {len(self.plan['inputs'])} inputs ({', '.join(self.input_names)}); got {len(arrays)}."
            )
        out = self.run(dict(zip(self.input_names, arrays)))
        values = [out[n] for n in self.output_names]
        return values[0] if len(values) == 1 else tuple(values)


class _Graph:
    """A captured CUDA graph of one plan: its static input copies and the environment
    (weights, arena views, outputs) whose addresses it holds."""

    def __init__(self, graph, static_in: dict, env: dict, specs: dict):
        self.graph, self.static_in, self.env, self.specs = graph, static_in, env, specs

    def replay(self, plan: dict, tensors: dict) -> dict:
        for b, t in tensors.items():
            self.static_in[b].copy_(t)
        self.graph.replay()
        checks.verify(plan, self.env)
        return CompiledModel._outputs(plan, self.env, self.specs, static=True)


def open_artifact(path: str | os.PathLike, cached: bool = False, cuda_graphs: bool = True):
    """The artifact at `path`, ready to run: a CompiledModel, or a `runtime.program.Program`
    for a model with run-time control flow (its plan has steps)."""
    from tritonnx.runtime.program import Program, is_program

    if (Path(path) / "plan.json").is_file() and is_program(Path(path)):
        return Program(path, cached=cached, cuda_graphs=cuda_graphs, open_artifact=open_artifact)
    return CompiledModel(path, cached=cached, cuda_graphs=cuda_graphs)


def load(artifact: str | os.PathLike, cuda_graphs: bool = True) -> CompiledModel:
    """The artifact directory written by `tritonnx.compile` (or `tritonnx compile -o DIR`),
    ready to run, without compiling: `tritonnx.load("out/").run({...})`. `cuda_graphs`:
    see CompiledModel (replay per set of input sizes on a GPU). Raises
    ArtifactError when the directory holds no artifact or one whose files fail their
    SHA-256 check (`tritonnx.runtime.format`)."""
    return open_artifact(artifact, cuda_graphs=cuda_graphs)
