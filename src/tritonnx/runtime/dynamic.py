"""Dynamic shapes at run time: binds a plan's symbolic sizes from the inputs and gives the
plan at those sizes (shapes, grids and memory plan as numbers).

A dynamic plan (`plan["symbols"]`, see `tritonnx.symbolic`) writes each size of a dynamic
dimension as Python integer arithmetic over the symbol names ("batch*seq*64",
"(-(-(batch*seq) // 64))"); kernels take the symbols' values as scalar arguments
(`launch["symbols"]`). Guards (`plan["guards"]`) are conditions the compiled kernels rely
on (e.g. a one-block softmax over a dynamic axis no longer than the block).
"""

from __future__ import annotations

from tritonnx.errors import InputError
from tritonnx.runtime.format import evaluate
from tritonnx.runtime.memory_plan import plan_memory


def bind(plan: dict, shapes: dict[str, list[int]]) -> dict[str, int]:
    """{symbol: value} from the shapes of the inputs ({input name: shape}). Raises
    InputError naming the input when a rank, a static size or a symbol's value disagrees."""
    symbols = plan.get("symbols", {})
    values: dict[str, int] = {}
    source: dict[str, str] = {}
    for spec in plan["inputs"]:
        got = list(shapes[spec["name"]])
        want = spec["shape"]
        if len(got) != len(want):
            raise InputError(
                f"input '{spec['name']}' has shape {got}; expected rank {len(want)} (shape {_show(want)})."
            )
        for n, w in zip(got, want):
            if isinstance(w, str) and w in symbols and w not in values:
                values[w], source[w] = int(n), spec["name"]
    for spec in plan["inputs"]:
        got = list(shapes[spec["name"]])
        for d, (n, w) in enumerate(zip(got, spec["shape"])):
            if isinstance(w, int):
                if n != w:
                    raise InputError(
                        f"input '{spec['name']}' has size {n} in dimension {d}; the model's "
                        f"size there is {w} (expected shape {_show(spec['shape'])})."
                    )
                continue
            try:
                expected = evaluate(w, values)
            except NameError:
                raise InputError(f"input '{spec['name']}' dimension {d} is {w}, which no input gives alone.") from None
            if n != expected:
                where = ", ".join(f"{s}={values[s]} (from input '{source[s]}')" for s in values)
                raise InputError(
                    f"input '{spec['name']}' has size {n} in dimension {d}; expected {w} = {expected} with {where}."
                )
    # a size of 0 is bound like any other: a launch with a 0 in its grid (an empty output)
    # does nothing; the others read an empty input as a static empty tensor is read (masked
    # loads, the identity of a reduction over nothing)
    for condition, reason in plan.get("guards", []):
        if not evaluate(condition, values):
            raise InputError(f"sizes {values} break the compiled plan's condition {condition}: {reason}.")
    return values


def _show(shape: list) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def concretize(plan: dict, values: dict[str, int]) -> dict:
    """A copy of a dynamic `plan` with every size, grid and the memory plan computed at
    `values` ({symbol: size}); launches carry their symbol arguments' values. Every entry
    it changes is a new dict; the rest is shared with `plan` (read-only)."""
    out = {k: v for k, v in plan.items() if k != "memory"}
    for group in ("inputs", "outputs", "buffers"):
        out[group] = [dict(t, shape=[evaluate(d, values) for d in t["shape"]]) for t in plan[group]]
    if "checks" in plan:  # the size of the axis an index check guards
        out["checks"] = [
            dict(
                c,
                size=evaluate(c["size"], values),
                **({"sizes": [evaluate(s, values) for s in c["sizes"]]} if "sizes" in c else {}),
            )
            for c in plan["checks"]
        ]
    launches = []
    for launch in plan["launches"]:
        new = dict(launch, grid=[evaluate(g, values) for g in launch["grid"]])
        if "flops" in launch:
            new["flops"] = evaluate(launch["flops"], values)
        if "candidates" in launch:
            new["candidates"] = [
                dict(cand, grid=[evaluate(g, values) for g in cand["grid"]]) for cand in launch["candidates"]
            ]
        new["symbol_values"] = [values[s] for s in launch.get("symbols", [])]
        launches.append(new)
    out["launches"] = launches
    out["memory"] = plan_memory(out)
    return out
