"""Runs a program artifact: structured steps (`graph`, `if`, `loop`, `scan`) over compiled
sub-artifacts (`tritonnx.compiler.program` writes them).

Values between steps are torch tensors on the device, by ONNX name. A `graph` step runs its
sub-artifact; `if` reads its condition from the device and runs one branch; `loop` reads its
trip count and, after each iteration, the body's condition (Loop-21: the loop runs while
`i < M` and the condition holds; the scan outputs of the iterations are stacked on a new
first axis); `scan` slices its scan inputs (Scan-21: `scan_input_axes`,
`scan_input_directions`) and stacks the scan outputs (`scan_output_axes`,
`scan_output_directions`). Each device read is a sync point (`plan["host_reads"]`); each
sub-artifact captures its own CUDA graphs.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tritonnx.errors import ArtifactError, InputError
from tritonnx.runtime import format as artifact_format
from tritonnx.runtime.tensors import _device, to_numpy, to_torch

MAX_LOOP_ITERATIONS = 1 << 20  # a Loop without a trip count stops with an error after this many
PREALLOCATE_BYTES = 1 << 28  # a Loop's scan output of at most this many bytes over its trip count is preallocated


class Program:
    """A compiled program: `run({name: array}) -> {name: array}` as `CompiledModel.run`
    (numpy in, numpy out; torch tensors in, torch tensors out). Raises InputError naming a
    wrong input, ArtifactError for a damaged artifact (each sub-artifact's plan.json is
    checked against the program's SHA-256 before it is loaded)."""

    def __init__(self, path: str | os.PathLike, cached: bool = False, cuda_graphs: bool = True, *, open_artifact):
        self.path = Path(path)
        self._open = open_artifact  # `tritonnx.runtime.open_artifact`, for the sub-artifacts
        self.cached = cached
        self.plan = artifact_format.load_plan(self.path)
        self._cuda_graphs = cuda_graphs
        self._subs: dict = {}
        self._lock = threading.RLock()
        self.device = _device()

    @property
    def dynamic(self) -> bool:
        """True when an input has a dynamic size."""
        return any(isinstance(d, str) for i in self.plan["inputs"] for d in i["shape"])

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.plan["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [o["name"] for o in self.plan["outputs"]]

    @property
    def launches(self) -> list[dict]:
        """The launches of every compiled step (branches and bodies once each)."""
        return [la for sub in self.subartifacts() for la in sub.launches]

    @property
    def cuda_graphs(self) -> bool:
        return self._cuda_graphs

    @cuda_graphs.setter
    def cuda_graphs(self, on: bool) -> None:
        self._cuda_graphs = on
        for sub in self._subs.values():
            sub.cuda_graphs = on

    @property
    def graphs_captured(self) -> int:
        return sum(sub.graphs_captured for sub in self._subs.values())

    def graph_blocker(self, plan: dict | None = None) -> str | None:
        return "a program with sync points: " + "; ".join(self.plan["host_reads"]) if self.plan["host_reads"] else None

    def subartifacts(self) -> list:
        """The loaded sub-artifact of every step (CompiledModel or Program), in step order."""
        out = []
        for step in self.plan["steps"]:
            for part in (
                [step]
                if step["step"] == "graph"
                else [step[a] for a in ("then_branch", "else_branch", "body") if a in step]
            ):
                out.append(self._sub(part["dir"]))
        return out

    def _sub(self, rel: str):
        if rel not in self._subs:
            artifact_format.verify_file(self.path, self.plan, f"{rel}/plan.json")
            self._subs[rel] = self._open(self.path / rel, cuda_graphs=self._cuda_graphs)
        return self._subs[rel]

    def run(self, feeds: dict) -> dict:
        """Runs the steps on `feeds` ({input name: numpy array or torch tensor}); returns
        {output name: array}. Raises InputError for a wrong input, or for a Loop that runs
        MAX_LOOP_ITERATIONS iterations without a trip count."""
        import torch

        if not isinstance(feeds, dict):
            raise InputError(f"inputs must be a dict {{name: array}}; got {type(feeds).__name__}.")
        expected = {i["name"]: i for i in self.plan["inputs"]}
        unknown = [n for n in feeds if n not in expected]
        missing = [n for n in expected if n not in feeds]
        if unknown or missing:
            raise InputError(
                f"wrong inputs: unknown {unknown}, missing {missing}; the model takes "
                + ", ".join(f"'{n}' {e['dtype']}{e['shape']}" for n, e in expected.items())
                + "."
            )

        def tensors(v) -> list:
            return list(v) if isinstance(v, list | tuple) else [] if v is None else [v]

        as_numpy = not any(isinstance(t, torch.Tensor) for v in feeds.values() for t in tensors(v))

        def on_device(v):
            return (v if isinstance(v, torch.Tensor) else to_torch(np.asarray(v))).to(self.device)

        env: dict = {}
        for name, v in feeds.items():
            kind = expected[name].get("kind", "tensor")
            if kind == "sequence":
                if not isinstance(v, list | tuple):
                    raise InputError(f"input '{name}' is a sequence: give a list of arrays; got {type(v).__name__}.")
                env[name] = [on_device(x) for x in v]
            elif kind == "optional":  # empty, a tensor, or (an optional sequence) a list of them
                env[name] = (
                    None if v is None else [on_device(x) for x in v] if isinstance(v, list | tuple) else on_device(v)
                )
            else:
                env[name] = on_device(v)
            for t in tensors(env[name]):
                _check_input(name, t, expected[name])
        for name, c in self.plan.get("constants", {}).items():
            env[name] = torch.tensor(c["values"], dtype=getattr(torch, c["dtype"]), device=self.device).reshape(
                c["shape"]
            )
        with self._lock:
            for step in self.plan["steps"]:
                getattr(self, "_" + step["step"])(step, env)

        def back(v):
            if isinstance(v, list):
                return [back(x) for x in v]
            return to_numpy(v) if as_numpy and v is not None else v

        return {o["name"]: back(env[o["name"]]) for o in self.plan["outputs"]}

    def __call__(self, *arrays):
        if len(arrays) != len(self.plan["inputs"]):
            raise InputError(
                f"the model takes {len(self.plan['inputs'])} inputs ({', '.join(self.input_names)}); got {len(arrays)}."
            )
        out = self.run(dict(zip(self.input_names, arrays)))
        values = [out[n] for n in self.output_names]
        return values[0] if len(values) == 1 else tuple(values)

    def _run_sub(self, part: dict, values: list, into: dict | None = None) -> list:
        """Runs sub-artifact `part` on its inputs then captures (`values` in that order);
        returns its outputs in order. `into` ({output position: tensor}): outputs a compiled
        sub-artifact writes into those tensors (`CompiledModel.run`); a program's are copied."""
        sub = self._sub(part["dir"])
        names = part.get("inputs", []) + part.get("captures", [])
        feeds = {n: v for n, v in zip(names, values) if n in sub.input_names}
        if into and not isinstance(sub, Program):
            out = sub.run(feeds, into={part["outputs"][k]: t for k, t in into.items()})
            return [_on(out[n], self.device) for n in part["outputs"]]
        out = sub.run(feeds)
        for k, t in (into or {}).items():
            t.copy_(_on(out[part["outputs"][k]], self.device))
        # a sub-artifact without inputs answers in numpy, as for a caller's numpy inputs
        return [_on(v, self.device) for v in (out[n] for n in part["outputs"])]

    def _host(self, step: dict, env: dict) -> None:
        """An op over sequences (Python lists of tensors) and optionals (a tensor or None),
        as SequenceConstruct-11, SequenceAt-11, SequenceInsert-11, SequenceErase-11,
        SequenceLength-11, SequenceEmpty-11, SplitToSequence-11, ConcatFromSequence-11,
        Optional-15, OptionalHasElement-18 and OptionalGetElement-18 define them; and the ops
        whose output size depends on the values (NonZero-13, Compress-11, Unique-11,
        NonMaxSuppression-11), whose
        results later steps take at their sizes (a sync point: the size is read). Raises
        IndexOutOfRangeError for a position outside the sequence, InputError for an empty
        optional read."""
        import torch

        from tritonnx.errors import IndexOutOfRangeError

        op, attrs, node = step["op"], step.get("attributes", {}), step["node"]
        ins: list[Any] = [env[n] if n else None for n in step["inputs"]]
        ins += [None] * (5 - len(ins))

        def position(seq: list, p, end: int) -> int:
            if p is None:
                return end
            i = int(p.reshape(-1)[0].item())  # a sync point: the position is read on the host
            n = len(seq)
            top = n if op == "SequenceInsert" else n - 1  # SequenceInsert-11 takes [-n, n]; the others [-n, n-1]
            if not -n <= i <= top:
                raise IndexOutOfRangeError(
                    f"node '{node}' ({op}): position {i} is out of range [{-n}, {top}] for a sequence of {n}."
                )
            return i + n if i < 0 else i

        out: object
        if op == "SequenceEmpty":
            out = []
        elif op == "SequenceConstruct":
            out = [env[n] for n in step["inputs"]]
        elif op == "SequenceAt":
            out = ins[0][position(ins[0], ins[1], 0)]
        elif op == "SequenceInsert":
            seq = list(ins[0])
            seq.insert(position(seq, ins[2], len(seq)), ins[1])
            out = seq
        elif op == "SequenceErase":
            seq = list(ins[0])
            if not seq:
                raise IndexOutOfRangeError(f"node '{node}' (SequenceErase): the sequence is empty.")
            del seq[position(seq, ins[1], len(seq) - 1)]
            out = seq
        elif op == "SequenceLength":
            out = torch.tensor(len(ins[0]), dtype=torch.int64, device=self.device)
        elif op == "SplitToSequence":
            x, axis = ins[0], attrs.get("axis", 0)
            if ins[1] is None:
                pieces = list(torch.split(x, 1, dim=axis))
                out = pieces if attrs.get("keepdims", 1) else [p.squeeze(axis) for p in pieces]
            elif ins[1].dim() == 0:
                out = list(torch.split(x, int(ins[1].item()), dim=axis))
            else:
                out = list(torch.split(x, [int(v) for v in ins[1].tolist()], dim=axis))
        elif op == "ConcatFromSequence":
            axis = attrs.get("axis", 0)
            out = torch.stack(ins[0], dim=axis) if attrs.get("new_axis", 0) else torch.cat(ins[0], dim=axis)
        elif op == "Optional":
            out = ins[0]
        elif op == "OptionalHasElement":
            out = torch.tensor(ins[0] is not None, dtype=torch.bool, device=self.device)
        elif op == "OptionalGetElement":
            if ins[0] is None:
                raise InputError(f"node '{node}' (OptionalGetElement): the optional is empty.")
            out = ins[0]
        elif op == "NonZero":  # NonZero-13: int64 [rank, count], row-major order
            out = torch.nonzero(ins[0]).T.contiguous()
        elif op == "Compress":  # Compress-11: the slices whose condition holds (a shorter condition: the first ones)
            x, cond = ins[0], ins[1].reshape(-1).bool()
            if "axis" not in attrs:
                x, axis = x.reshape(-1), 0
            else:
                axis = attrs["axis"] % x.dim()
            n = min(cond.numel(), x.shape[axis])
            out = x.index_select(axis, torch.nonzero(cond[:n]).reshape(-1))
        elif op == "NonMaxSuppression":
            max_out, iou, score = (None if v is None or v.numel() == 0 else v.reshape(-1)[0].item() for v in ins[2:5])
            kept = _non_max_suppression(
                to_numpy(ins[0]), to_numpy(ins[1]), max_out, iou, score, attrs.get("center_point_box", 0)
            )
            out = torch.from_numpy(kept).to(self.device)
        else:  # Unique
            for name, value in zip(step["outputs"], _unique(ins[0], attrs)):
                if name:
                    env[name] = value
            return
        env[step["outputs"][0]] = out

    def _bind(self, step: dict, env: dict) -> None:
        """A data-dependent size (`importers.bounded`): reads the count (a sync point) and
        passes on the first `count` entries of each padded result along `axis`. Raises
        InputError for a count outside [0, bound] (a TopK's K from the inputs)."""
        count = int(env[step["count"]].reshape(-1)[0].item())  # sync point
        if not 0 <= count <= step["bound"]:
            raise InputError(
                f"node '{step['node']}': its size {count} (from {step['count']!r}) is outside "
                f"[0, {step['bound']}], the size of axis {step['axis']} it takes from."
            )
        for padded, out in zip(step["inputs"], step["outputs"]):
            if out:
                env[out] = env[padded].narrow(step["axis"], 0, count)

    def _graph(self, step: dict, env: dict) -> None:
        out = self._run_sub(step, [env[n] for n in step["inputs"]])
        env.update(zip(step["outputs"], out))

    def _if(self, step: dict, env: dict) -> None:
        cond = bool(env[step["inputs"][0]].reshape(-1)[0].item())  # sync point
        part = step["then_branch" if cond else "else_branch"]
        out = self._run_sub(part, [env[c] for c in part["captures"]])
        env.update((n, v) for n, v in zip(step["outputs"], out) if n)

    def _loop(self, step: dict, env: dict) -> None:
        import torch

        body = step["body"]
        inputs = step["inputs"] + [""] * (2 - len(step["inputs"]))
        trips = int(env[inputs[0]].reshape(-1)[0].item()) if inputs[0] else None  # sync point
        cond = bool(env[inputs[1]].reshape(-1)[0].item()) if inputs[1] else True
        carried = [env[n] for n in inputs[2:]]
        captures = [env[c] for c in body["captures"]]
        n_carried = len(carried)
        n_scans = len(body["outputs"]) - 1 - n_carried
        # with a trip count, the scan outputs are written in place into their slices of the
        # result (cut to the iterations run); without one, stacked after the last
        scans: list = [None if trips else [] for _ in range(n_scans)]
        i = 0
        while cond and (trips is None or i < trips):
            if trips is None and i >= MAX_LOOP_ITERATIONS:
                raise InputError(f"Loop {step['node']} ran {i} iterations without its condition ending it.")
            iteration = torch.tensor(i, dtype=torch.int64, device=self.device)
            flag = torch.tensor(cond, dtype=torch.bool, device=self.device)
            into = {1 + n_carried + k: t[i] for k, t in enumerate(scans) if isinstance(t, torch.Tensor)}
            out = self._run_sub(body, [iteration, flag, *carried, *captures], into)
            cond = bool(out[0].reshape(-1)[0].item())  # sync point
            carried = out[1 : 1 + n_carried]
            for k, v in enumerate(out[1 + n_carried :]):
                if scans[k] is None:  # the first iteration gives the shape
                    if trips and trips * v.numel() * v.element_size() <= PREALLOCATE_BYTES:
                        scans[k] = torch.empty((trips, *v.shape), dtype=v.dtype, device=v.device)
                        scans[k][0] = v
                        continue
                    scans[k] = []  # a trip count far above what the condition lets run
                if isinstance(scans[k], list):
                    scans[k].append(v)
            i += 1
        stacked = []
        for k, values in enumerate(scans):
            if isinstance(values, torch.Tensor):
                stacked.append(values[:i])
                continue
            if values:
                stacked.append(torch.stack(values))
                continue
            # no iteration: [0, *the body output's shape], where the body's plan fixes it
            spec = {o["name"]: o for o in self._sub(body["dir"]).plan["outputs"]}[body["outputs"][1 + n_carried + k]]
            if not all(isinstance(d, int) for d in spec["shape"]) or spec.get("kind"):
                raise InputError(
                    f"Loop {step['node']} ran no iteration: its scan output "
                    f"{step['outputs'][n_carried + k]!r} has no known shape."
                )
            stacked.append(torch.empty((0, *spec["shape"]), dtype=getattr(torch, spec["dtype"]), device=self.device))
        env.update((n, v) for n, v in zip(step["outputs"], carried + stacked) if n)

    def _scan(self, step: dict, env: dict) -> None:
        import torch

        body = step["body"]
        attrs = step.get("attributes", {})
        m = int(attrs.get("num_scan_inputs", 0))
        inputs = step["inputs"]
        n_state = len(inputs) - m
        xs = [env[n] for n in inputs[n_state:]]

        def ints(name, n):
            v = attrs.get(name)
            return [0] * n if v is None else ([v] if isinstance(v, int) else list(v))

        axes = [a % x.dim() for a, x in zip(ints("scan_input_axes", m), xs)]
        dirs = ints("scan_input_directions", m)
        lengths = {x.shape[a] for x, a in zip(xs, axes)}
        if len(lengths) != 1:
            raise InputError(f"Scan {step['node']}: its scan inputs have lengths {sorted(lengths)}; Scan needs one.")
        (steps,) = lengths
        k_out = len(body["outputs"]) - n_state
        out_axes, out_dirs = ints("scan_output_axes", k_out), ints("scan_output_directions", k_out)
        state = [env[n] for n in inputs[:n_state]]
        captures = [env[c] for c in body["captures"]]
        if steps == 0:
            raise InputError(f"Scan {step['node']} has scan inputs of length 0: its outputs have no known shape.")
        # scan outputs stacked on axis 0 are written in place into their slices of the result
        stacked: list = [None] * k_out
        for t in range(steps):
            pieces = [x.select(a, t if d == 0 else steps - 1 - t) for x, a, d in zip(xs, axes, dirs)]
            slot = [t if out_dirs[k] == 0 else steps - 1 - t for k in range(k_out)]
            into = {n_state + k: stacked[k][slot[k]] for k in range(k_out) if isinstance(stacked[k], torch.Tensor)}
            out = self._run_sub(body, [*state, *pieces, *captures], into)
            state = out[:n_state]
            for k, v in enumerate(out[n_state:]):
                if stacked[k] is None:  # the first step gives the shape
                    if out_axes[k] % (v.dim() + 1) == 0:
                        stacked[k] = torch.empty((steps, *v.shape), dtype=v.dtype, device=v.device)
                        stacked[k][slot[k]] = v
                        continue
                    stacked[k] = []
                if isinstance(stacked[k], list):  # another axis: stacked after the last step
                    stacked[k].append(v)
        for k in range(k_out):
            if isinstance(stacked[k], list):
                values = stacked[k] if out_dirs[k] == 0 else stacked[k][::-1]
                stacked[k] = torch.stack(values, dim=out_axes[k] % (values[0].dim() + 1))
        env.update((n, v) for n, v in zip(step["outputs"], state + stacked) if n)


def _non_max_suppression(boxes, scores, max_out, iou_threshold, score_threshold, center_point_box: int) -> np.ndarray:
    """NonMaxSuppression-11: int64 [selected, 3] rows (batch, class, box) for boxes
    [batches, n, 4] and scores [batches, classes, n]: per batch and class, greedily the
    highest-scoring box (ties: the lower index) whose IoU with every box kept so far is at
    most `iou_threshold`, of those scoring above `score_threshold` (all, when absent), at
    most `max_out` (none when absent or 0). Boxes are corners [y1, x1, y2, x2] in either
    order (`center_point_box` 0) or [x_center, y_center, width, height] (1)."""
    limit = int(max_out or 0)
    iou_threshold = 0.0 if iou_threshold is None else iou_threshold
    if center_point_box:
        cx, cy, w, h = (boxes[..., i] for i in range(4))
        x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    else:
        y0, y1 = np.minimum(boxes[..., 0], boxes[..., 2]), np.maximum(boxes[..., 0], boxes[..., 2])
        x0, x1 = np.minimum(boxes[..., 1], boxes[..., 3]), np.maximum(boxes[..., 1], boxes[..., 3])
    area = (x1 - x0) * (y1 - y0)
    rows = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            candidates = np.arange(s.shape[0]) if score_threshold is None else np.nonzero(s > score_threshold)[0]
            order = candidates[np.lexsort((candidates, -s[candidates]))]
            kept: list[int] = []
            for i in order:
                if len(kept) >= limit:
                    break
                if kept:
                    k = np.array(kept)
                    iw = np.minimum(x1[b, i], x1[b, k]) - np.maximum(x0[b, i], x0[b, k])
                    ih = np.minimum(y1[b, i], y1[b, k]) - np.maximum(y0[b, i], y0[b, k])
                    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0)
                    union = area[b, i] + area[b, k] - inter
                    valid = (inter > 0) & (area[b, i] > 0) & (area[b, k] > 0) & (union > 0)
                    iou = np.where(valid, inter / np.where(valid, union, 1), 0)
                    if (iou > iou_threshold).any():
                        continue
                kept.append(int(i))
            rows += [(b, c, i) for i in kept]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _unique(x, attrs: dict) -> list:
    """Unique-11: [Y, indices, inverse_indices, counts] of `x` (flattened, or slices along
    `axis`), sorted ascending (`sorted`=1, lexicographically for slices) or in the order of
    first occurrence; `indices` the first occurrence of each, all int64."""
    import torch

    axis = attrs.get("axis")
    flat = axis is None
    data = x.reshape(-1) if flat else x
    dim = 0 if flat else axis % x.dim()
    values, inverse, counts = torch.unique(data, sorted=True, return_inverse=True, return_counts=True, dim=dim)
    n = data.shape[dim]
    first = torch.full((counts.numel(),), n, dtype=torch.int64, device=x.device)
    first = first.scatter_reduce(0, inverse.reshape(-1), torch.arange(n, device=x.device), reduce="amin")
    if not attrs.get("sorted", 1):
        order = torch.argsort(first)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.numel(), device=x.device)
        values, first, counts, inverse = values.index_select(dim, order), first[order], counts[order], rank[inverse]
    return [values, first, inverse.reshape(-1).to(torch.int64), counts.to(torch.int64)]


def _on(value, device):
    """A sub-artifact's output on the device: numpy arrays as torch tensors, sequences element by
    element, tensors and empty optionals as they are."""
    if isinstance(value, np.ndarray):
        return to_torch(value).to(device)
    if isinstance(value, list):
        return [_on(v, device) for v in value]
    return value


def _check_input(name: str, t, spec: dict) -> None:
    """Raises InputError when tensor `t` (an input, or an element of a sequence or optional
    input) does not have the spec's dtype and static sizes."""
    dtype = str(t.dtype).replace("torch.", "")
    if spec.get("kind"):  # a sequence's elements may differ in shape from its element type: the dtype binds
        if dtype != spec["dtype"]:
            raise InputError(
                f"input '{name}' holds dtype {dtype}; expected {spec['dtype']} (its {spec['kind']}'s elements)."
            )
        return
    static = [d if isinstance(d, int) else None for d in spec["shape"]]
    if (
        dtype != spec["dtype"]
        or len(t.shape) != len(static)
        or any(d is not None and d != n for d, n in zip(static, t.shape))
    ):
        raise InputError(
            f"input '{name}' has shape {list(t.shape)} and dtype {dtype}; expected shape "
            f"{spec['shape']} and dtype {spec['dtype']}"
            + (f" (an element of a {spec['kind']})" if spec.get("kind") else "")
            + "."
        )


def is_program(path: Path) -> bool:
    """Whether the artifact at `path` is a program (its plan has steps)."""
    import json

    try:
        return bool(json.loads((Path(path) / "plan.json").read_text()).get("program"))
    except (OSError, ValueError, AttributeError):
        from tritonnx.runtime.format import load_plan

        load_plan(Path(path))  # raises the ArtifactError that says what is wrong (missing, not JSON, no marker)
        raise ArtifactError(f"{path} is not a tritonnx artifact (no readable plan.json).") from None
