"""Seeded random ONNX graphs, compiled by tritonnx and checked against onnxruntime.

    case = generate(seed)          # one valid ModelProto and its input feeds, a pure function of seed
    result = check(case)           # compile, run, compare with onnxruntime: a Result

A graph is a chain of 1-12 op applications (about 70 op types: elementwise with NumPy
broadcasting, MatMul, Gemm, Conv, ConvTranspose, pools, reductions, normalizations,
Softmax, views, Gather, Resize, CumSum, TopK, ...) at opset 17-21 over small tensors (at
most `MAX_ELEMS` elements). Each op reads a recent value of the graph (or a new graph input
or weight) and its attributes are drawn at random within the spec; onnx's strict shape
inference checks every node as it is added (a node it rejects is drawn again), and the
finished model must pass `onnx.checker.check_model(full_check=True)`, or the case is
marked invalid (`Case.invalid`) and skipped.

Float inputs are standard normals; with probability `SPECIAL_P` an input also holds a few
special values (0, +-inf, nan, +-1e4, 1e30). To keep the comparison free of false alarms,
each value records whether every correct implementation computes it bit for bit
(`Val.exact`: inputs, views, Relu, Max, pools by max, ...) and whether it may hold
specials: results that turn a one-ulp difference into a different answer (comparisons,
Floor, Round, Cast to int or bool, ArgMax, TopK indices, Hardmax) only read exact values;
order-based ops (TopK, ArgMax, MaxPool, ReduceMax/Min) only values without specials (with a
NaN, onnxruntime's answer depends on where it is), and so do MeanVarianceNormalization,
GroupNormalization and LayerNormalization (onnxruntime's variance E[x^2] - E[x]^2 cancels or
overflows on huge values); ceil_mode pools avoid a last window that
starts in the padding (onnx's shape inference and onnxruntime disagree on it).

`check` classifies a case: "match"; "mismatch" (a wrong number: a bug); "ort_differs"
(tritonnx and onnxruntime differ, but the evidence says onnxruntime is off the spec: see
below);
"refused" (tritonnx raised a TritonnxError of its own: an unsupported op or attribute,
with its message); "ort_refused" (onnxruntime could not run the model: skipped);
"internal" (any other exception in tritonnx, or a CompileError wrapping one: a bug);
"invalid" (the generator made a model onnx rejects: a generator bug, skipped).
`bench/fuzz.py` runs many seeds; `tests/test_fuzz.py` a bounded range.

The tie-break (`tie_break`), when tritonnx's outputs depart from onnxruntime's: a case is
"ort_differs" only when both hold:
  1. wherever tritonnx departs from onnxruntime (element by element), it agrees with the spec:
     onnx's reference evaluator on the whole graph or, where that crashes, `reference_by_node`:
     the graph evaluated node by node by the reference, each node fed the reference's own
     earlier values, and a node the reference cannot evaluate (an exception, or an output whose
     type or shape is not the inferred one) run by onnxruntime on those same values;
  2. onnxruntime departs from the spec on some node (`ort_departures`): every intermediate
     value comes from onnxruntime (a copy of the model that outputs them all), and each node,
     evaluated by the reference on onnxruntime's values of its inputs, gives something else
     than onnxruntime's output (nodes the reference cannot evaluate are no evidence).
The detail names the nodes where onnxruntime departs.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

F32, F16, F64, I32, I64, BOOL = (
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.DOUBLE,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.BOOL,
)
NP: dict[int, type[np.generic]] = {
    F32: np.float32,
    F16: np.float16,
    F64: np.float64,
    I32: np.int32,
    I64: np.int64,
    BOOL: np.bool_,
}
FLOATS, INTS = (F32, F16, F64), (I32, I64)
IR_VERSION = {17: 8, 18: 8, 19: 9, 20: 9, 21: 10}
MAX_ELEMS = 4096  # elements of any tensor
MAX_MACS = 200_000  # multiply-adds of one Conv/MatMul/Gemm (the interpreter is slow)
SPECIAL_P = 0.15  # chance that a float graph input holds special values
SPECIALS = np.array([0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 1e30], np.float32)


@dataclass
class Val:
    """A value of the graph being built: its shape and dtype, and what an op may assume."""

    name: str
    shape: tuple
    dtype: int
    exact: bool = False  # every correct implementation computes the same bits
    special: bool = False  # may hold nan, inf or huge values
    nonneg: bool = False  # >= 0 (or nan)
    checked: bool = True  # may be a graph output (False: TopK indices of inexact values)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class Case:
    """One generated graph: the model, its input feeds, the op types it holds."""

    seed: int
    model: onnx.ModelProto | None
    feeds: dict
    ops: list[str] = field(default_factory=list)
    opset: int = 0
    invalid: str | None = None  # why onnx rejects the model (a generator bug), else None


class Reject(Exception):
    """An op could not be applied as drawn; the generator draws another."""


def _broadcast(*shapes):
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        return None


class _Graph:
    def __init__(self, rng: np.random.Generator, opset: int):
        self.rng, self.opset = rng, opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.feeds: dict[str, np.ndarray] = {}
        self.vals: list[Val] = []
        self.n = 0

    # --- building blocks ---------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def snapshot(self):
        return len(self.nodes), len(self.inits), len(self.inputs), len(self.vals)

    def restore(self, snap):
        n, i, x, v = snap
        del self.nodes[n:], self.inits[i:], self.vals[v:]
        for inp in self.inputs[x:]:
            self.feeds.pop(inp.name, None)
        del self.inputs[x:]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def integer(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def data(self, shape, dtype=F32, special=None, low=-5, high=5) -> tuple[np.ndarray, bool]:
        r = self.rng
        if dtype in FLOATS:
            a = r.standard_normal(shape).astype(NP[dtype])
            special = self.chance(SPECIAL_P) if special is None else special
            if special and a.size:
                flat = a.reshape(-1)
                for _ in range(self.integer(1, 4)):
                    flat[r.integers(flat.size)] = r.choice(SPECIALS)
            return a, bool(special)
        if dtype == BOOL:
            return np.asarray(r.random(shape) < 0.5), False
        return np.asarray(r.integers(low, high + 1, size=shape)).astype(NP[dtype]), False

    def input(self, shape, dtype=F32, special=None, low=-5, high=5) -> Val:
        """A new graph input with random feed data."""
        name = self.fresh("in")
        a, special = self.data(tuple(shape), dtype, special, low, high)
        self.inputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        self.feeds[name] = a
        v = Val(name, tuple(shape), dtype, exact=True, special=special)
        self.vals.append(v)
        return v

    def weight(self, shape, dtype=F32, low=-5, high=5) -> Val:
        """A new initializer with random data (no specials); an input with probability 0.2."""
        if self.chance(0.2):
            return self.input(shape, dtype, special=False, low=low, high=high)
        name = self.fresh("w")
        a, _ = self.data(tuple(shape), dtype, False, low, high)
        self.inits.append(numpy_helper.from_array(a, name))
        v = Val(name, tuple(shape), dtype, exact=True)
        self.vals.append(v)
        return v

    def param(self, array) -> str:
        """A compile-time parameter (shape, axes, pads, scales...): an initializer, or
        a Constant node with probability 0.25."""
        array = np.asarray(array)
        name = self.fresh("p")
        if self.chance(0.25):
            self.nodes.append(
                helper.make_node(
                    "Constant", [], [name], value=numpy_helper.from_array(array, name), name=self.fresh("const_")
                )
            )
        else:
            self.inits.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, values) -> str:
        return self.param(np.array(values, np.int64))

    def pick(self, pred=lambda v: True) -> Val | None:
        """A value satisfying pred: the newest with probability 0.6, else any."""
        cands = [v for v in self.vals if v.checked and pred(v)]
        if not cands:
            return None
        if self.chance(0.6):
            return cands[-1]
        return self.choice(cands)

    def source(self, pred, make_shape, dtype=F32, clean=False) -> Val:
        """A value satisfying pred, or a new graph input of shape make_shape(); `clean`:
        one without specials (a value with specials is picked again among the others, so
        that graphs whose op reads none draw the same numbers)."""
        v = self.pick(pred) if self.chance(0.85) else None
        if v is not None and clean and v.special:
            v = self.pick(lambda u: pred(u) and not u.special)
        if v is not None:
            return v
        v = self.input(make_shape(), dtype)
        if v.special and (clean or not pred(v)):  # e.g. TopK: a NaN's place in the order is not defined
            a = self.feeds[v.name]  # clear the specials in place: the random stream stays the same
            a[~(np.isfinite(a) & (np.abs(a) < 1e3))] = 1.0
            v.special = False
        return v

    def shape(self, rank=None, max_elems=512, lo=1, hi=8) -> tuple:
        rank = self.integer(1, 4) if rank is None else rank
        while True:
            s = tuple(self.integer(lo, hi) for _ in range(rank))
            if math.prod(s) <= max_elems:
                return s

    def emit(
        self,
        op: str,
        inputs: list[str],
        n_out: int = 1,
        exact=False,
        special=False,
        nonneg=False,
        same_as: Val | None = None,
        **attrs,
    ) -> list[Val]:
        """Adds a node; its outputs' types come from onnx's strict shape inference (Reject
        when it fails, a size is unknown or zero, or a tensor is larger than MAX_ELEMS);
        `same_as`: the type where onnx infers none (GroupNormalization)."""
        outs = [self.fresh("t") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.fresh(f"{op}_"), **attrs))
        types = self._infer()
        vals = []
        if same_as is not None:
            types.setdefault(outs[0], (same_as.dtype, same_as.shape))
        for o in outs:
            if o not in types:
                raise Reject(f"{op}: no type inferred")
            dtype, shape = types[o]
            if any(d is None or d <= 0 for d in shape) or math.prod(shape) > MAX_ELEMS:
                raise Reject(f"{op}: shape {shape}")
            vals.append(Val(o, shape, dtype, exact=exact, special=special, nonneg=nonneg))
        self.vals.extend(vals)
        return vals

    def model(self, outputs: list[Val]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "fuzz",
            self.inputs,
            [helper.make_tensor_value_info(v.name, v.dtype, list(v.shape)) for v in outputs],
            self.inits,
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            ir_version=IR_VERSION[self.opset],
            producer_name="tritonnx.fuzz",
        )

    def _infer(self) -> dict:
        try:
            inferred = shape_inference.infer_shapes(self.model([]), check_type=True, strict_mode=True, data_prop=True)
        except Exception as e:  # noqa: BLE001  # onnx raises InferenceError, ValidationError and others
            raise Reject(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        out = {}
        for vi in inferred.graph.value_info:
            t = vi.type.tensor_type
            if not t.HasField("shape"):
                continue
            out[vi.name] = (t.elem_type, tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim))
        return out

    # --- operands ----------------------------------------------------------------------
    def partner(self, x: Val, dtype=None, exact=False, allow_same=True) -> Val:
        """A second operand broadcastable with x: an existing value, x itself, or a new
        input or weight whose shape drops leading dims of x, sets some to 1, or adds one."""
        dtype = x.dtype if dtype is None else dtype
        ok = [
            v
            for v in self.vals
            if v.checked
            and v.dtype == dtype
            and v is not x
            and (v.exact or not exact)
            and (b := _broadcast(v.shape, x.shape)) is not None
            and math.prod(b) <= MAX_ELEMS
        ]
        if ok and self.chance(0.35):
            return self.choice(ok)
        if allow_same and x.dtype == dtype and self.chance(0.1):
            return x
        shape = list(x.shape)[self.integer(0, x.rank) if self.chance(0.3) else 0 :]
        shape = [1 if self.chance(0.25) else (self.integer(2, 3) if d == 1 and self.chance(0.3) else d) for d in shape]
        if self.chance(0.1) and x.rank <= len(shape) < 4:
            shape = [self.integer(2, 3)] + shape
        b = _broadcast(tuple(shape), x.shape)
        if b is None or math.prod(b) > MAX_ELEMS:
            shape = [1] * len(shape)
        return self.input(shape, dtype) if self.chance(0.5) else self.weight(shape, dtype)


# --- op generators: each adds one op (and the helpers it needs) or raises Reject ---------


def _float(v: Val) -> bool:
    return v.dtype == F32


def _numeric(v: Val) -> bool:
    return v.dtype in (F32, I32, I64)


UNARY = {  # op -> (exact input needed, exact output, may make specials, nonneg output)
    "Relu": (False, True, False, True),
    "Abs": (False, True, False, True),
    "Neg": (False, True, False, False),
    "Sigmoid": (False, False, False, True),
    "Tanh": (False, False, False, False),
    "Exp": (False, False, True, True),
    "Sin": (False, False, False, False),
    "Cos": (False, False, False, False),
    "Erf": (False, False, False, False),
    "Softplus": (False, False, True, True),
    "Softsign": (False, False, False, False),
    "HardSwish": (False, False, False, False),
    "Floor": (True, True, False, False),
    "Ceil": (True, True, False, False),
    "Round": (True, True, False, False),
    "Sign": (True, True, False, False),
    "Reciprocal": (True, False, True, False),
    "Selu": (False, False, False, False),
    "Elu": (False, False, False, False),
    "Celu": (False, False, False, False),
}


def _unary(op):
    def gen(g: _Graph):
        need_exact, exact, special, nonneg = UNARY[op]
        # Sin and Cos of a huge inexact value (a ReduceProd's, say) turn its last-bit
        # differences into different answers: they read exact values or ones without specials
        periodic = op in ("Sin", "Cos")
        x = g.source(lambda v: _float(v) and (v.exact or not (need_exact or periodic and v.special)), g.shape)
        attrs: dict[str, Any] = {}
        if op in ("Elu", "Celu"):
            attrs["alpha"] = float(g.choice([0.5, 1.0, 2.0]))
        g.emit(op, [x.name], exact=exact and x.exact, special=special or x.special, nonneg=nonneg, **attrs)

    return gen


def gen_sqrt_log(op):
    def gen(g: _Graph):
        x = g.source(_float, g.shape)
        if not x.nonneg:
            (x,) = g.emit("Abs", [x.name], exact=x.exact, special=x.special, nonneg=True)
        if op == "Log" and not x.exact:  # log of a value that should be 0 but is 1e-9 is -20, not -inf
            one = g.param(np.array(1.0, np.float32))
            (x,) = g.emit("Add", [x.name, one], special=x.special, nonneg=True)
        g.emit(op, [x.name], special=True if op == "Log" else x.special, nonneg=op == "Sqrt")

    return gen


def gen_activation(op):
    def gen(g: _Graph):
        x = g.source(lambda v: _float(v) and (v.exact or op not in ("ThresholdedRelu", "Shrink")), g.shape)
        attrs: dict[str, Any] = {}
        if op == "LeakyRelu":
            attrs["alpha"] = float(g.choice([0.01, 0.1, 0.5, 2.0]))
        elif op == "HardSigmoid":
            attrs = {"alpha": float(g.choice([0.2, 0.5])), "beta": float(g.choice([0.5, 0.1]))}
        elif op == "ThresholdedRelu":
            attrs["alpha"] = float(g.choice([0.0, 0.5, 1.0]))
        elif op == "Shrink":
            attrs = {"lambd": float(g.choice([0.5, 1.0])), "bias": float(g.choice([0.0, 0.5]))}
        elif op == "Gelu":
            if g.opset < 20:
                raise Reject("Gelu needs opset 20")
            attrs["approximate"] = g.choice(["none", "tanh"])
        g.emit(op, [x.name], special=x.special, exact=op == "ThresholdedRelu" and x.exact, **attrs)

    return gen


def gen_clip(g: _Graph):
    x = g.source(_numeric, g.shape)
    np_t = NP[x.dtype]
    lo, hi = sorted(g.rng.standard_normal(2) * (1 if x.dtype == F32 else 3))
    ins = [x.name]
    form = g.integer(0, 3)  # none, min, max, both
    ins.append(g.param(np.array(lo).astype(np_t)) if form in (1, 3) else "")
    ins.append(g.param(np.array(hi).astype(np_t)) if form in (2, 3) else "")
    while ins[-1] == "":
        ins.pop()
    g.emit("Clip", ins, exact=x.exact, special=x.special)


def gen_binary(op):
    def gen(g: _Graph):
        x = g.source(_numeric if op in ("Add", "Sub", "Mul", "Max", "Min") else _float, g.shape)
        exact_ints = x.dtype in INTS
        if op == "Div":
            if exact_ints or g.chance(0.6):  # a denominator away from zero
                shape = list(x.shape)[g.integer(0, x.rank) :]
                mag = g.rng.uniform(0.5, 2.0, shape) if x.dtype == F32 else g.rng.integers(1, 4, shape)
                d = (mag * g.rng.choice([-1, 1], shape)).astype(NP[x.dtype])
                y = Val(g.param(d), tuple(shape), x.dtype, exact=True)
            else:
                y = g.partner(x, exact=True)
            g.emit("Div", [x.name, y.name], exact=exact_ints, special=x.special or not exact_ints)
            return
        if op == "Pow":
            if not x.nonneg:
                (x,) = g.emit("Abs", [x.name], exact=x.exact, special=x.special, nonneg=True)
            e = g.param(np.array(g.choice([0.5, 2.0, 3.0]), np.float32))
            g.emit("Pow", [x.name, e], special=True, nonneg=True)
            return
        ys = [g.partner(x)]
        if op in ("Max", "Min", "Sum", "Mean") and g.chance(0.3):
            ys.append(g.partner(x))
        vals = [x] + ys
        exact = (op in ("Max", "Min") or exact_ints) and all(v.exact for v in vals)
        special = any(v.special for v in vals) or (op == "Mul" and not exact_ints)
        g.emit(op, [v.name for v in vals], exact=exact, special=special)

    return gen


def gen_prelu(g: _Graph):
    x = g.source(_float, g.shape)
    shape = [1 if g.chance(0.5) else d for d in x.shape[g.integer(0, x.rank) :]]
    g.emit("PRelu", [x.name, g.weight(shape).name], special=x.special)


def gen_compare(op):
    def gen(g: _Graph):
        x = g.source(lambda v: _numeric(v) and v.exact, g.shape)
        y = g.partner(x, exact=True)
        g.emit(op, [x.name, y.name], exact=True)

    return gen


def _bool_value(g: _Graph, like: Val | None = None) -> Val:
    v = g.pick(lambda v: v.dtype == BOOL and (like is None or _broadcast(v.shape, like.shape) is not None))
    if v is not None and g.chance(0.7):
        return v
    if like is not None and g.chance(0.5):  # a comparison of like with a constant
        zero = g.param(np.zeros([1] * min(like.rank, 1), NP[like.dtype]))
        if like.exact:
            (c,) = g.emit(g.choice(["Greater", "Less"]), [like.name, zero], exact=True)
            return c
    shape = like.shape[g.integer(0, like.rank) :] if like is not None else g.shape()
    return g.input(shape, BOOL)


def gen_logical(op):
    def gen(g: _Graph):
        x = _bool_value(g)
        if op == "Not":
            g.emit("Not", [x.name], exact=True)
        else:
            g.emit(op, [x.name, g.partner(x).name], exact=True)

    return gen


def gen_where(g: _Graph):
    x = g.source(_numeric, g.shape)
    y = g.partner(x)
    cond = _bool_value(g, x)
    if _broadcast(cond.shape, x.shape, y.shape) is None:
        raise Reject("Where shapes")
    g.emit("Where", [cond.name, x.name, y.name], exact=x.exact and y.exact, special=x.special or y.special)


def gen_isnan_isinf(op):
    def gen(g: _Graph):
        x = g.source(lambda v: _float(v) and (v.exact or op == "IsNaN"), lambda: g.shape())
        attrs: dict[str, Any] = (
            {"detect_negative": g.integer(0, 1), "detect_positive": g.integer(0, 1)}
            if op == "IsInf" and g.chance(0.5)
            else {}
        )
        g.emit(op, [x.name], exact=True, **attrs)

    return gen


def gen_cast(g: _Graph):
    x = g.source(lambda v: True, g.shape)
    if x.dtype == F32:
        kind = g.integer(0, 2)
        if kind == 0 or (x.special or not x.exact):  # through half and back
            (h,) = g.emit("Cast", [x.name], to=F16, exact=x.exact, special=True)
            g.emit("Cast", [h.name], to=F32, exact=x.exact, special=True)
        elif kind == 1:  # nonzero: a value that should be 0 but is 1e-9 would turn True
            g.emit("Cast", [x.name], to=BOOL, exact=True)
        else:  # truncation of exact, finite values
            g.emit("Cast", [x.name], to=g.choice([I32, I64]), exact=True)
    elif x.dtype == BOOL:
        g.emit("Cast", [x.name], to=g.choice([F32, I64, I32]), exact=True, nonneg=True)
    elif x.dtype in INTS:
        g.emit("Cast", [x.name], to=g.choice([F32, I64 if x.dtype == I32 else I32]), exact=True)
    else:
        g.emit("Cast", [x.name], to=F32, exact=x.exact, special=x.special)


def gen_matmul(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank >= 1, lambda: g.shape(g.integer(1, 3), hi=12))
    k = x.shape[-1]
    n = g.integer(1, 16)
    if x.rank == 1 or g.chance(0.6):
        wshape = [k, n] if g.chance(0.85) else [k]
        if x.rank >= 3 and g.chance(0.3):
            wshape = [x.shape[-3] if g.chance(0.7) else 1, k, n]
        ins = [x.name, g.weight(wshape).name]
    elif g.chance(0.5):  # weight on the left
        m = g.integer(1, 16)
        ins = [g.weight([m, x.shape[-2]]).name, x.name]
        k, n = x.shape[-2], x.shape[-1]
    else:  # two activations: x @ partner with matching K
        y = g.pick(lambda v: _float(v) and v.rank >= 2 and v.shape[-2] == k and v is not x)
        if y is None:
            y = g.input([k, n])
        ins = [x.name, y.name]
        n = y.shape[-1]
    if x.size // max(k, 1) * k * n > MAX_MACS:
        raise Reject("MatMul too large")
    g.emit("MatMul", ins, special=True)


def gen_gemm(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank == 2, lambda: g.shape(2, hi=12))
    ta, tb = g.integer(0, 1), g.integer(0, 1)
    m, k = x.shape[::-1] if ta else x.shape
    n = g.integer(1, 16)
    if m * k * n > MAX_MACS:
        raise Reject("Gemm too large")
    b = g.weight([n, k] if tb else [k, n])
    ins = [x.name, b.name]
    if g.chance(0.7):
        ins.append(g.weight(g.choice([[n], [1, n], [m, 1], [m, n], []])).name)
    attrs: dict[str, Any] = {"transA": ta, "transB": tb}
    if g.chance(0.4):
        attrs.update(alpha=float(g.choice([0.5, 2.0, -1.0])), beta=float(g.choice([0.0, 0.5, 1.0, 3.0])))
    g.emit("Gemm", ins, special=True, **attrs)


def _spatial(g: _Graph, ranks=(3, 4), cmax=8, nan_ok=True):
    def shape():
        rank = g.choice(ranks)
        return tuple(
            [g.integer(1, 2), g.integer(1, cmax)] + [g.integer(3, 10 if rank == 4 else 16) for _ in range(rank - 2)]
        )

    v = g.source(
        lambda v: (
            _float(v)
            and v.rank in ranks
            and v.shape[1] <= 16
            and math.prod(v.shape[2:]) >= 2
            and (nan_ok or not v.special)
        ),
        shape,
    )
    if v.special and not nan_ok:
        raise Reject("NaN order-dependent")
    return v


def _window(g: _Graph, sizes, pools=False):
    """kernel, strides, dilations, pads per spatial dim with an output of size >= 1."""
    ks: list[int] = []
    ss: list[int] = []
    ds: list[int] = []
    pb: list[int] = []
    pe: list[int] = []
    for s in sizes:
        k = g.integer(1, min(3, s))
        d = g.integer(1, 2) if g.chance(0.3) and (k - 1) * 2 + 1 <= s else 1
        ext = (k - 1) * d + 1
        ks.append(k)
        ds.append(d)
        ss.append(g.integer(1, 2) if g.chance(0.4) else 1)
        top = k - 1 if pools else ext - 1
        pb.append(g.integer(0, top) if g.chance(0.4) else 0)
        pe.append(g.integer(0, top) if g.chance(0.4) else 0)
    return ks, ss, ds, pb + pe


def gen_conv(g: _Graph):
    x = _spatial(g, ranks=(3, 4, 4, 5) if g.chance(0.1) else (3, 4))
    n, c, *sp = x.shape
    groups = [d for d in range(1, c + 1) if c % d == 0]
    group = g.choice(groups) if g.chance(0.3) else 1
    m = group * g.integer(1, max(1, 8 // group))
    ks, ss, ds, pads = _window(g, sp)
    attrs = {"kernel_shape": ks}
    if g.chance(0.15):
        attrs["auto_pad"] = g.choice(["SAME_UPPER", "SAME_LOWER", "VALID"])
    elif any(pads):
        attrs["pads"] = pads
    if any(s > 1 for s in ss):
        attrs["strides"] = ss
    if any(d > 1 for d in ds):
        attrs["dilations"] = ds
    if group > 1:
        attrs["group"] = group
    if n * m * math.prod(sp) * (c // group) * math.prod(ks) > MAX_MACS:
        raise Reject("Conv too large")
    ins = [x.name, g.weight([m, c // group] + ks).name]
    if g.chance(0.6):
        ins.append(g.weight([m]).name)
    g.emit("Conv", ins, special=True, **attrs)


def gen_conv_transpose(g: _Graph):
    x = _spatial(g)
    n, c, *sp = x.shape
    group = g.choice([d for d in range(1, c + 1) if c % d == 0]) if g.chance(0.3) else 1
    mg = g.integer(1, 4)
    ks, ss, ds, pads = _window(g, sp)
    attrs = {"kernel_shape": ks}
    if any(pads):
        attrs["pads"] = pads
    if any(s > 1 for s in ss):
        attrs["strides"] = ss
        if g.chance(0.3):
            attrs["output_padding"] = [g.integer(0, s - 1) for s in ss]
    if any(d > 1 for d in ds):
        attrs["dilations"] = ds
    if group > 1:
        attrs["group"] = group
    out = [s * (i - 1) + (k - 1) * d + 1 for s, i, k, d in zip(ss, sp, ks, ds)]
    if n * mg * group * math.prod(out) * (c // group) * math.prod(ks) > MAX_MACS:
        raise Reject("ConvTranspose too large")
    ins = [x.name, g.weight([c, mg] + ks).name]
    if g.chance(0.5):
        ins.append(g.weight([mg * group]).name)
    g.emit("ConvTranspose", ins, special=True, **attrs)


def _ceil_agrees(sizes, attrs) -> bool:
    """False where ceil_mode's last window would start in the right padding: onnx's shape
    inference keeps that window and onnxruntime drops it (the spec has said both)."""
    n = len(sizes)
    pads = attrs.get("pads", [0] * 2 * n)
    for i, size in enumerate(sizes):
        k, s, d = attrs["kernel_shape"][i], attrs.get("strides", [1] * n)[i], attrs.get("dilations", [1] * n)[i]
        span = size + pads[i] + pads[i + n] - (k - 1) * d - 1
        out = -(-span // s) + 1
        if (out - 1) * s >= size + pads[i]:
            return False
    return True


def gen_pool(op):
    def gen(g: _Graph):
        x = _spatial(g, nan_ok=op not in ("MaxPool", "GlobalMaxPool"))
        if op.startswith("Global"):
            g.emit(op, [x.name], exact=x.exact and op == "GlobalMaxPool", special=x.special)
            return
        ks, ss, ds, pads = _window(g, x.shape[2:], pools=True)
        attrs = {"kernel_shape": ks}
        if any(pads):
            attrs["pads"] = pads
        if any(s > 1 for s in ss):
            attrs["strides"] = ss
        if any(d > 1 for d in ds) and (op == "MaxPool" or g.opset >= 19 or op == "LpPool" and g.opset >= 18):
            attrs["dilations"] = ds
        if g.chance(0.3) and (op != "LpPool" or g.opset >= 18) and _ceil_agrees(x.shape[2:], attrs):
            attrs["ceil_mode"] = 1
        if op == "AveragePool" and any(pads) and g.chance(0.5):
            attrs["count_include_pad"] = 1
        if op == "LpPool":
            attrs["p"] = g.integer(1, 3)
        g.emit(op, [x.name], exact=x.exact and op == "MaxPool", special=x.special or op == "LpPool", **attrs)

    return gen


REDUCE = {
    "ReduceSum": False,
    "ReduceMean": False,
    "ReduceMax": True,
    "ReduceMin": True,
    "ReduceProd": False,
    "ReduceL1": False,
    "ReduceL2": False,
    "ReduceSumSquare": False,
    "ReduceLogSumExp": False,
}


def gen_reduce(op):
    def gen(g: _Graph):
        x = g.source(
            lambda v: (
                _numeric(v)
                and v.rank >= 1
                and (v.dtype == F32 or op in ("ReduceSum", "ReduceMax", "ReduceMin"))
                and not (v.special and REDUCE[op])
            ),
            g.shape,
        )
        if x.special and REDUCE[op]:
            raise Reject("NaN order-dependent")
        attrs: dict[str, Any] = {}
        ins = [x.name]
        axes = None
        if g.chance(0.8):
            axes = sorted(g.rng.choice(x.rank, size=g.integer(1, x.rank), replace=False).tolist())
            axes = [a - x.rank if g.chance(0.3) else a for a in axes]
        if g.chance(0.4):
            attrs["keepdims"] = 0
        if axes is not None:
            if op == "ReduceSum" or g.opset >= 18:
                ins.append(g.ints(axes))
            else:
                attrs["axes"] = axes
        special = x.special or op in ("ReduceProd", "ReduceLogSumExp", "ReduceSumSquare", "ReduceL2")
        g.emit(op, ins, exact=REDUCE[op] and x.exact or x.dtype in INTS, special=special, **attrs)

    return gen


def gen_arg(op):
    def gen(g: _Graph):
        x = g.source(lambda v: _numeric(v) and v.rank >= 1 and v.exact and not v.special, g.shape)
        attrs: dict[str, Any] = {"axis": g.integer(-x.rank, x.rank - 1)}
        if g.chance(0.4):
            attrs["keepdims"] = 0
        if g.chance(0.3):
            attrs["select_last_index"] = 1
        g.emit(op, [x.name], exact=True, **attrs)

    return gen


def gen_softmax(op):
    def gen(g: _Graph):
        x = g.source(lambda v: _float(v) and v.rank >= 1 and (op != "Hardmax" or v.exact and not v.special), g.shape)
        attrs: dict[str, Any] = {"axis": g.integer(-x.rank, x.rank - 1)} if g.chance(0.6) else {}
        g.emit(
            op,
            [x.name],
            exact=op == "Hardmax",
            special=x.special or op == "LogSoftmax",
            nonneg=op != "LogSoftmax",
            **attrs,
        )

    return gen


def gen_layer_norm(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank >= 1, g.shape, clean=True)
    axis = g.integer(-x.rank, x.rank - 1) if g.chance(0.5) else -1
    norm = list(x.shape[axis:])
    if g.chance(0.2):  # a scale that broadcasts over the normalized dims
        norm = [1] * (len(norm) - 1) + norm[-1:]
    ins = [x.name, g.weight(norm).name]
    if g.chance(0.6):
        ins.append(g.weight(norm).name)
    attrs: dict[str, Any] = {"axis": axis}
    if g.chance(0.3):
        attrs["epsilon"] = float(g.choice([1e-3, 1e-6]))
    g.emit("LayerNormalization", ins, special=x.special, **attrs)


def gen_batch_norm(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank >= 2, lambda: g.shape(g.integer(2, 4)))
    c = x.shape[1]
    var = Val(g.param(g.rng.uniform(0.2, 2.0, c).astype(np.float32)), (c,), F32)
    consts = [g.param(g.rng.standard_normal(c).astype(np.float32)) for _ in range(3)]  # tritonnx folds them
    ins = [x.name] + consts + [var.name]
    g.emit(
        "BatchNormalization", ins, special=x.special, **cast(dict[str, Any], {"epsilon": 1e-3} if g.chance(0.3) else {})
    )


def gen_instance_norm(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank >= 3, lambda: g.shape(g.integer(3, 4)))
    c = x.shape[1]
    g.emit("InstanceNormalization", [x.name, g.weight([c]).name, g.weight([c]).name], special=x.special)


def gen_group_norm(g: _Graph):
    if g.opset < 21:
        raise Reject("GroupNormalization-21 (per-channel scale) needs opset 21")
    x = g.source(lambda v: _float(v) and v.rank >= 3, lambda: g.shape(g.integer(3, 4)), clean=True)
    c = x.shape[1]
    groups = g.choice([d for d in range(1, c + 1) if c % d == 0])
    g.emit(
        "GroupNormalization",
        [x.name, g.weight([c]).name, g.weight([c]).name],
        num_groups=groups,
        special=x.special,
        same_as=x,
    )


def gen_lp_norm(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank >= 1, g.shape)
    g.emit("LpNormalization", [x.name], axis=g.integer(-x.rank, x.rank - 1), p=g.integer(1, 2), special=True)


def gen_mvn(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank >= 1, g.shape, clean=True)
    axes = sorted(g.rng.choice(x.rank, size=g.integer(1, x.rank), replace=False).tolist())
    if math.prod(x.shape[a] for a in axes) < 2:  # a variance of 0: onnxruntime gives NaN, the spec 0
        raise Reject("MeanVarianceNormalization over one element")
    g.emit("MeanVarianceNormalization", [x.name], axes=axes, special=True)


def _like(x: Val, **kw):
    return dict(exact=x.exact, special=x.special, nonneg=x.nonneg, **kw)


def gen_transpose(g: _Graph):
    x = g.source(lambda v: v.rank >= 2, g.shape)
    attrs = {} if g.chance(0.2) else {"perm": g.rng.permutation(x.rank).tolist()}
    g.emit("Transpose", [x.name], **_like(x, **attrs))


def _factor(g: _Graph, n: int, rank: int) -> list[int]:
    dims = []
    for _ in range(rank - 1):
        divs = [d for d in range(1, n + 1) if n % d == 0 and d <= 64]
        d = g.choice(divs)
        dims.append(d)
        n //= d
    return dims + [n]


def gen_reshape(g: _Graph):
    x = g.source(lambda v: True, g.shape)
    dims = _factor(g, x.size, g.integer(1, 4))
    if g.chance(0.3):
        dims[g.integer(0, len(dims) - 1)] = -1
    for i, d in enumerate(dims):
        if i < x.rank and d == x.shape[i] and g.chance(0.3):
            dims[i] = 0
    g.emit("Reshape", [x.name, g.ints(dims)], **_like(x))


def gen_flatten(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    g.emit("Flatten", [x.name], axis=g.integer(-x.rank, x.rank), **_like(x))


def gen_squeeze(g: _Graph):
    x = g.source(lambda v: 1 in v.shape, lambda: tuple(1 if g.chance(0.4) else d for d in g.shape()))
    ones = [i for i, d in enumerate(x.shape) if d == 1]
    if not ones:
        raise Reject("no dim of size 1")
    ins = [x.name]
    if g.chance(0.8):
        axes = sorted(g.rng.choice(ones, size=g.integer(1, len(ones)), replace=False).tolist())
        ins.append(g.ints([a - x.rank if g.chance(0.3) else a for a in axes]))
    g.emit("Squeeze", ins, **_like(x))


def gen_unsqueeze(g: _Graph):
    x = g.source(lambda v: v.rank <= 4, g.shape)
    k = g.integer(1, 2)
    out = x.rank + k
    axes = sorted(g.rng.choice(out, size=k, replace=False).tolist())
    g.emit("Unsqueeze", [x.name, g.ints([a - out if g.chance(0.3) else a for a in axes])], **_like(x))


def gen_slice(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    axes = sorted(g.rng.choice(x.rank, size=g.integer(1, x.rank), replace=False).tolist())
    starts, ends, steps = [], [], []
    for a in axes:
        d = x.shape[a]
        step = g.choice([1, 1, 1, 2, -1, -2]) if d > 1 else 1
        start = g.integer(-d, d - 1)
        if step > 0:
            end = g.choice([g.integer(start + 1 if start >= 0 else start + d + 1, d), 2**62, -1 if d > 1 else 1])
        else:
            end = g.choice([g.integer(-d - 1, (start if start >= 0 else start + d) - 1), -(2**62)])
        if len(range(*slice(start, end, step).indices(d))) == 0:
            start, end, step = 0, d, 1
        starts.append(start)
        ends.append(end)
        steps.append(step)
    ins = [x.name, g.ints(starts), g.ints(ends)]
    if g.chance(0.7) or any(s != 1 for s in steps):
        ins.append(g.ints([a - x.rank if g.chance(0.3) else a for a in axes]))
        if any(s != 1 for s in steps) or g.chance(0.3):
            ins.append(g.ints(steps))
    elif axes != list(range(len(axes))):  # without axes, starts/ends apply to the first dims
        ins.append(g.ints(axes))
    g.emit("Slice", ins, **_like(x))


def gen_concat(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    axis = g.integer(0, x.rank - 1)
    parts = [x]
    for _ in range(g.integer(1, 2)):
        same = [
            v
            for v in g.vals
            if v.checked
            and v.dtype == x.dtype
            and v.rank == x.rank
            and all(a == b for i, (a, b) in enumerate(zip(v.shape, x.shape)) if i != axis)
        ]
        if same and g.chance(0.4):
            parts.append(g.choice(same))
        else:
            shape = list(x.shape)
            shape[axis] = g.integer(1, 4)
            parts.append(g.input(shape, x.dtype) if g.chance(0.5) else g.weight(shape, x.dtype))
    g.emit(
        "Concat",
        [p.name for p in parts],
        axis=axis - x.rank if g.chance(0.3) else axis,
        exact=all(p.exact for p in parts),
        special=any(p.special for p in parts),
    )


def gen_split(g: _Graph):
    x = g.source(lambda v: v.rank >= 1 and max(v.shape) >= 2, g.shape)
    axis = g.choice([i for i, d in enumerate(x.shape) if d >= 2])
    d = x.shape[axis]
    n = g.integer(2, min(3, d))
    ins, attrs = [x.name], {"axis": axis}
    if g.chance(0.5):
        cuts = sorted(g.rng.choice(np.arange(1, d), size=n - 1, replace=False).tolist())
        ins.append(g.ints(np.diff([0] + cuts + [d]).tolist()))
    elif g.opset >= 18:
        attrs["num_outputs"] = n
    elif d % n:
        raise Reject("uneven Split before opset 18")
    g.emit("Split", ins, n_out=n, **_like(x, **attrs))


def gen_pad(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    modes = ["constant", "reflect", "edge"] + (["wrap"] if g.opset >= 19 else [])
    mode = g.choice(modes)
    axes = list(range(x.rank))
    if g.opset >= 18 and g.chance(0.3):
        axes = sorted(g.rng.choice(x.rank, size=g.integer(1, x.rank), replace=False).tolist())
    pads = []
    for _side in range(2):
        for a in axes:
            d = x.shape[a]
            hi = min(2, d - 1) if mode == "reflect" else 2 if mode != "wrap" else min(2, d)
            lo = -min(1, d - 1) if mode == "constant" and g.chance(0.15) else 0
            pads.append(g.integer(lo, max(lo, hi)) if g.chance(0.7) else 0)
    ins = [x.name, g.ints(pads)]
    if mode == "constant" and g.chance(0.5):
        ins.append(g.param(np.array(g.choice([0.0, 1.5, -2.0]) if x.dtype in FLOATS else 3).astype(NP[x.dtype])))
    if len(axes) != x.rank:
        while len(ins) < 3:
            ins.append("")
        ins.append(g.ints(axes))
    g.emit("Pad", ins, mode=mode, **_like(x))


def gen_expand(g: _Graph):
    x = g.source(lambda v: v.rank <= 4, lambda: tuple(1 if g.chance(0.5) else d for d in g.shape()))
    shape = [g.integer(2, 3) if d == 1 and g.chance(0.7) else (1 if g.chance(0.2) else d) for d in x.shape]
    if g.chance(0.3) and len(shape) < 4:
        shape = [g.integer(1, 3)] + shape
    g.emit("Expand", [x.name, g.ints(shape)], **_like(x))


def gen_tile(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    g.emit("Tile", [x.name, g.ints([g.integer(1, 3) if g.chance(0.5) else 1 for _ in x.shape])], **_like(x))


def _indices(g: _Graph, shape, n: int) -> Val:
    """int64 indices in [-n, n-1]: a weight or a graph input (data-dependent)."""
    if g.chance(0.5):
        return g.input(shape, I64, low=-n, high=n - 1)
    a = g.rng.integers(-n, n, size=shape).astype(np.int64)
    return Val(g.param(a), tuple(shape), I64, exact=True)


def gen_gather(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    axis = g.integer(0, x.rank - 1)
    ishape = [g.integer(1, 4) for _ in range(g.integer(0, 2))]
    idx = _indices(g, ishape, x.shape[axis])
    g.emit("Gather", [x.name, idx.name], axis=axis - x.rank if g.chance(0.3) else axis, **_like(x))


def gen_gather_elements(g: _Graph):
    x = g.source(lambda v: v.rank >= 1, g.shape)
    axis = g.integer(0, x.rank - 1)
    ishape = [
        g.integer(1, 4) if i == axis else (g.integer(1, d) if g.chance(0.3) else d) for i, d in enumerate(x.shape)
    ]
    idx = _indices(g, ishape, x.shape[axis])
    g.emit("GatherElements", [x.name, idx.name], axis=axis, **_like(x))


def gen_resize(g: _Graph):
    x = g.source(
        lambda v: _float(v) and v.rank == 4 and v.shape[2] * v.shape[3] <= 100,
        lambda: (g.integer(1, 2), g.integer(1, 4), g.integer(1, 8), g.integer(1, 8)),
    )
    mode = g.choice(["nearest", "linear"])
    modes = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]
    attrs = {
        "mode": mode,
        "coordinate_transformation_mode": g.choice(modes + (["half_pixel_symmetric"] if g.opset >= 19 else [])),
    }
    if mode == "nearest":
        attrs["nearest_mode"] = g.choice(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
    if g.chance(0.6):
        scales = [1.0, 1.0] + [float(g.choice([0.5, 1.0, 1.5, 2.0, 3.0])) for _ in range(2)]
        ins = [x.name, "", g.param(np.array(scales, np.float32))]
    else:
        sizes = list(x.shape[:2]) + [g.integer(1, 2 * d + 2) for d in x.shape[2:]]
        ins = [x.name, "", "", g.ints(sizes)]
    g.emit("Resize", ins, exact=mode == "nearest" and x.exact, special=x.special, **attrs)


def gen_depth_space(op):
    def gen(g: _Graph):
        b = g.integer(2, 3)
        if op == "DepthToSpace":
            x = g.source(
                lambda v: v.rank == 4 and v.shape[1] % (b * b) == 0,
                lambda: (1, b * b * g.integer(1, 2), g.integer(1, 5), g.integer(1, 5)),
            )
            attrs = {"blocksize": b, "mode": g.choice(["DCR", "CRD"])}
        else:
            x = g.source(
                lambda v: v.rank == 4 and v.shape[2] % b == 0 and v.shape[3] % b == 0,
                lambda: (1, g.integer(1, 3), b * g.integer(1, 4), b * g.integer(1, 4)),
            )
            attrs = {"blocksize": b}
        g.emit(op, [x.name], **_like(x, **attrs))

    return gen


def gen_cumsum(g: _Graph):
    x = g.source(lambda v: _numeric(v) and v.rank >= 1, g.shape)
    axis = g.integer(-x.rank, x.rank - 1)
    attrs: dict[str, Any] = {k: 1 for k in ("exclusive", "reverse") if g.chance(0.3)}
    g.emit(
        "CumSum",
        [x.name, g.param(np.array(axis, g.choice([np.int64, np.int32])))],
        exact=x.dtype in INTS,
        special=x.special,
        **attrs,
    )


def gen_topk(g: _Graph):
    x = g.source(lambda v: _numeric(v) and v.rank >= 1 and not v.special, lambda: g.shape())
    axis = g.integer(-x.rank, x.rank - 1)
    k = g.integer(1, x.shape[axis])
    attrs: dict[str, Any] = {"axis": axis}
    if g.chance(0.4):
        attrs["largest"] = 0
    values, indices = g.emit("TopK", [x.name, g.ints([k])], n_out=2, exact=x.exact, **attrs)
    indices.exact, indices.checked = True, x.exact  # the order of near-ties is not defined
    values.nonneg = x.nonneg


def gen_trilu(g: _Graph):
    x = g.source(lambda v: v.rank >= 2, lambda: g.shape(g.integer(2, 3)))
    ins = [x.name] + ([g.param(np.array(g.integer(-3, 3), np.int64))] if g.chance(0.6) else [])
    g.emit("Trilu", ins, upper=g.integer(0, 1), **_like(x))


def gen_einsum(g: _Graph):
    x = g.source(lambda v: _float(v) and v.rank in (2, 3), lambda: g.shape(g.integer(2, 3)))
    if x.rank == 2:
        eq, w = g.choice(
            [
                ("ij,jk->ik", [x.shape[1], g.integer(1, 8)]),
                ("ij->ji", None),
                ("ij->i", None),
                ("ij,ij->ij", list(x.shape)),
                ("ij,j->i", [x.shape[1]]),
            ]
        )
    else:
        eq, w = g.choice(
            [("bij,bjk->bik", [x.shape[0], x.shape[2], g.integer(1, 8)]), ("bij->bji", None), ("bij->bj", None)]
        )
    ins = [x.name] + ([g.weight(w).name] if w is not None else [])
    g.emit("Einsum", ins, equation=eq, special=True)


GENERATORS = {
    **{op: _unary(op) for op in UNARY},
    "Sqrt": gen_sqrt_log("Sqrt"),
    "Log": gen_sqrt_log("Log"),
    **{op: gen_activation(op) for op in ("LeakyRelu", "HardSigmoid", "ThresholdedRelu", "Shrink", "Gelu")},
    "Clip": gen_clip,
    **{op: gen_binary(op) for op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean")},
    "PRelu": gen_prelu,
    **{op: gen_compare(op) for op in ("Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual")},
    **{op: gen_logical(op) for op in ("Not", "And", "Or", "Xor")},
    "Where": gen_where,
    "IsNaN": gen_isnan_isinf("IsNaN"),
    "IsInf": gen_isnan_isinf("IsInf"),
    "Cast": gen_cast,
    "MatMul": gen_matmul,
    "Gemm": gen_gemm,
    "Conv": gen_conv,
    "ConvTranspose": gen_conv_transpose,
    **{op: gen_pool(op) for op in ("MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool")},
    **{op: gen_reduce(op) for op in REDUCE},
    "ArgMax": gen_arg("ArgMax"),
    "ArgMin": gen_arg("ArgMin"),
    **{op: gen_softmax(op) for op in ("Softmax", "LogSoftmax", "Hardmax")},
    "LayerNormalization": gen_layer_norm,
    "BatchNormalization": gen_batch_norm,
    "InstanceNormalization": gen_instance_norm,
    "GroupNormalization": gen_group_norm,
    "LpNormalization": gen_lp_norm,
    "MeanVarianceNormalization": gen_mvn,
    "Transpose": gen_transpose,
    "Reshape": gen_reshape,
    "Flatten": gen_flatten,
    "Squeeze": gen_squeeze,
    "Unsqueeze": gen_unsqueeze,
    "Slice": gen_slice,
    "Concat": gen_concat,
    "Split": gen_split,
    "Pad": gen_pad,
    "Expand": gen_expand,
    "Tile": gen_tile,
    "Gather": gen_gather,
    "GatherElements": gen_gather_elements,
    "Resize": gen_resize,
    "DepthToSpace": gen_depth_space("DepthToSpace"),
    "SpaceToDepth": gen_depth_space("SpaceToDepth"),
    "CumSum": gen_cumsum,
    "TopK": gen_topk,
    "Trilu": gen_trilu,
    "Einsum": gen_einsum,
}
OP_TYPES = sorted(GENERATORS)


def generate(seed: int, max_nodes: int = 12) -> Case:
    """The random graph for `seed`: the same model and feeds on every call."""
    rng = np.random.default_rng(seed)
    g = _Graph(rng, int(rng.integers(17, 22)))
    for _ in range(g.integer(1, 2)):
        g.input(g.shape())
    if g.chance(0.15):
        g.input(g.shape(), I64)
    if g.chance(0.1):
        g.input(g.shape(), BOOL)
    steps = g.integer(1, max_nodes)
    done = tries = 0
    while done < steps and tries < 20 * steps:
        tries += 1
        snap = g.snapshot()
        op = g.choice(OP_TYPES)
        try:
            GENERATORS[op](g)
            done += 1
        except Reject:
            g.restore(snap)
        except Exception as e:  # noqa: BLE001 - a generator bug: the case is skipped as invalid
            return Case(seed, None, {}, [], g.opset, invalid=f"generator error in {op}: {type(e).__name__}: {e}")
    produced = {o for n in g.nodes if n.op_type != "Constant" for o in n.output}
    read = {i for n in g.nodes for i in n.input}
    outputs = [v for v in g.vals if v.name in produced and v.checked and (v.name not in read or g.chance(0.15))]
    if not outputs:
        outputs = [v for v in g.vals if v.name in produced and v.checked][-1:]
    # graph inputs nothing reads are dropped (onnxruntime and tritonnx would both ignore them)
    g.inputs = [i for i in g.inputs if i.name in read]
    g.feeds = {k: v for k, v in g.feeds.items() if k in read}
    model = g.model(outputs)
    ops = sorted({n.op_type for n in g.nodes if n.op_type != "Constant"})
    case = Case(seed, model, g.feeds, ops, g.opset)
    if not outputs:
        case.invalid = "no op could be applied"
        return case
    try:
        onnx.checker.check_model(model, full_check=True)
        shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:  # noqa: BLE001
        case.invalid = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return case


# --- the differential check ----------------------------------------------------------------


@dataclass
class Result:
    seed: int
    status: str  # match, mismatch, refused, ort_refused, internal, invalid
    ops: list[str]
    detail: str = ""
    seconds: float = 0.0
    opset: int = 0
    special: bool = False  # an input holds inf, nan or a huge value


def has_specials(feeds: dict) -> bool:
    return any(
        a.dtype.kind == "f" and a.size and not (np.isfinite(a) & (np.abs(a) < 1e3)).all() for a in feeds.values()
    )


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """onnxruntime on the CPU, one thread, without graph optimizations (the plain reference)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def compare(got: np.ndarray, want: np.ndarray, rtol=1e-3, atol=1e-4) -> str | None:
    """None when got matches want, else what differs. Floats: the same NaN and infinity
    positions, elsewhere |got - want| <= atol * scale + rtol * |want| with scale the
    largest finite |want| (at least 1); integers and bools: exactly."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"shape {list(got.shape)}, onnxruntime {list(want.shape)}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, onnxruntime {want.dtype}"
    if want.dtype.kind != "f":
        bad = got != want
        if bad.any():
            i = np.argwhere(bad)[0]
            return f"{int(bad.sum())} of {bad.size} differ; at {i.tolist()}: {got[tuple(i)]} vs {want[tuple(i)]}"
        return None
    if want.dtype == np.float16:
        rtol, atol = max(rtol, 1e-2), max(atol, 1e-3)
    g64, w64 = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return _compare_floats(got, want, g64, w64, rtol, atol)


def _bad_floats(g64, w64, rtol, atol):
    finite = np.isfinite(w64)
    scale = max(1.0, float(np.abs(w64[finite]).max())) if finite.any() else 1.0
    bad = np.isnan(g64) != np.isnan(w64)
    inf = np.isinf(w64) | np.isinf(g64)
    bad |= inf & ~np.isnan(w64) & (g64 != w64)
    close = np.abs(g64 - w64) <= atol * scale + rtol * np.abs(w64)
    bad |= finite & np.isfinite(g64) & ~close
    return bad, finite, scale


def differing(got, want) -> np.ndarray | None:
    """The mask of the elements where got departs from want (`compare`'s rule), or None
    when their shapes or dtypes differ."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return None
    if want.dtype.kind != "f":
        return got != want
    rtol, atol = (1e-2, 1e-3) if want.dtype == np.float16 else (1e-3, 1e-4)
    with np.errstate(invalid="ignore"):
        return _bad_floats(got.astype(np.float64), want.astype(np.float64), rtol, atol)[0]


def _compare_floats(got, want, g64, w64, rtol, atol):
    bad, finite, scale = _bad_floats(g64, w64, rtol, atol)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        err = np.abs(g64 - w64)[finite & np.isfinite(g64)]
        return (
            f"{int(bad.sum())} of {bad.size} differ; at {list(map(int, i))}: {got[i]!r} vs {want[i]!r}; "
            f"max abs err {err.max() if err.size else float('nan'):.3g}, scale {scale:.3g}"
        )
    return None


def reference_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray] | None:
    """onnx's reference evaluator (the spec in NumPy), or None when it cannot run the model."""
    from onnx.reference import ReferenceEvaluator

    try:
        with np.errstate(all="ignore"):
            return [np.asarray(a) for a in ReferenceEvaluator(model).run(None, dict(feeds))]
    except Exception:  # noqa: BLE001 - the reference cannot run every model
        return None


def _one_node(model: onnx.ModelProto, node, values: dict) -> onnx.ModelProto:
    """A model of `node` alone whose inputs (graph inputs, initializers or values of
    earlier nodes) are graph inputs typed after their arrays in `values`."""
    ins = [
        helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(values[i].dtype), list(values[i].shape))
        for i in dict.fromkeys(node.input)
        if i
    ]
    graph = helper.make_graph([node], "node", ins, [onnx.ValueInfoProto(name=o) for o in node.output if o])
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def _types(model: onnx.ModelProto) -> dict:
    """{value name: (numpy dtype, shape)} as onnx's shape inference gives them."""
    out: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001
        return out
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.elem_type and t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
            out[vi.name] = (helper.tensor_dtype_to_np_dtype(t.elem_type), tuple(d.dim_value for d in t.shape.dim))
    return out


def _run_node(model, node, values, engine, types=None) -> list[np.ndarray] | None:
    """`node` evaluated on `values` by "reference" or "ort", or None when that fails (or,
    for the reference, gives an output whose type or shape is not the inferred one)."""
    one = _one_node(model, node, values)
    feeds = {i: values[i] for i in node.input if i}
    try:
        if engine == "ort":
            return [np.asarray(a) for a in ort_run(one, feeds)]
        from onnx.reference import ReferenceEvaluator

        with np.errstate(all="ignore"):
            outs = [np.asarray(a) for a in ReferenceEvaluator(one).run(None, feeds)]
    except Exception:  # noqa: BLE001 - either may fail on a node
        return None
    for o, a in zip(node.output, outs):
        if o in (types or {}) and (a.dtype, a.shape) != types[o]:
            return None  # e.g. its GlobalMaxPool of a rank-3 tensor drops an axis
    return outs


def ort_values(model: onnx.ModelProto, feeds: dict) -> dict:
    """onnxruntime's value of every graph input, initializer and node output: the model
    is run once more with every node output made a graph output."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    outs = [o for n in m.graph.node for o in n.output if o]
    del m.graph.output[:]
    m.graph.output.extend(onnx.ValueInfoProto(name=o) for o in outs)
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    values.update(feeds)
    values.update(zip(outs, ort_run(m, feeds)))
    return values


def reference_by_node(model: onnx.ModelProto, feeds: dict) -> tuple[list[np.ndarray] | None, list[str]]:
    """The graph run node by node by onnx's reference evaluator, each node fed the values
    of this run; a node the reference cannot evaluate is run by onnxruntime on the same
    values (and named in the second result). None when neither can run some node."""
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    values.update(feeds)
    fallback, types = [], _types(model)
    for node in model.graph.node:
        outs = _run_node(model, node, values, "reference", types)
        if outs is None:
            fallback.append(f"{node.name} ({node.op_type})")
            outs = _run_node(model, node, values, "ort")
            if outs is None:
                return None, fallback
        values.update((o, a) for o, a in zip(node.output, outs) if o)
    return [values[o.name] for o in model.graph.output], fallback


def ort_departures(model: onnx.ModelProto, feeds: dict) -> list[str]:
    """Nodes where onnxruntime's output departs from the reference evaluator's on the same
    inputs (onnxruntime's own values of them): the evidence that onnxruntime is off the
    spec. Nodes the reference cannot evaluate are no evidence."""
    try:
        values = ort_values(model, feeds)
    except Exception:  # noqa: BLE001
        return []
    out, types = [], _types(model)
    for node in model.graph.node:
        ref = _run_node(model, node, values, "reference", types)
        if ref is None:
            continue
        for o, r in zip(node.output, ref):
            if o and (why := compare(values[o], r)):
                out.append(f"{node.name} ({node.op_type}) {o}: onnxruntime {why.replace('vs', 'vs reference')}")
    return out


def _differences(names, got, want) -> list[str]:
    """What differs between got ({name: array} or a list in names' order) and want (a list)."""
    out = []
    for i, (name, w) in enumerate(zip(names, want)):
        g = got.get(name) if isinstance(got, dict) else got[i]
        why = "missing" if g is None else compare(g, w)
        if why:
            out.append(f"{name}: {why}")
    return out


def _agrees_where_ort_differs(names, got, want, ref) -> bool:
    """tritonnx's outputs (got) agree with ref at every element where they depart from
    onnxruntime's (want); where tritonnx and onnxruntime agree, ref is not consulted."""
    for i, (name, w, r) in enumerate(zip(names, want, ref)):
        g = got.get(name) if isinstance(got, dict) else got[i]
        if g is None:
            return False
        off_ort = differing(g, w)
        off_ref = differing(g, r)
        if off_ort is None or off_ref is None:
            return False
        if (off_ort & off_ref).any():
            return False
    return True


def tie_break(case: Case, names, got, want) -> str | None:
    """Why onnxruntime, not tritonnx, is off the spec, or None when that is not shown:
    wherever tritonnx's outputs depart from onnxruntime's, they agree with onnx's reference
    evaluator's (the whole graph, or `reference_by_node` where the whole-graph run fails),
    and onnxruntime departs from the reference on some node given its own inputs
    (`ort_departures`)."""
    assert case.model is not None, "only an invalid case has no model"
    ref, how = reference_run(case.model, case.feeds), "onnx's reference evaluator"
    if ref is None:
        ref, fallback = reference_by_node(case.model, case.feeds)
        how = "onnx's reference evaluator node by node" + (
            f" (onnxruntime for {', '.join(fallback)})" if fallback else ""
        )
    if ref is None or not _agrees_where_ort_differs(names, got, want, ref):
        return None
    departures = ort_departures(case.model, case.feeds)
    if not departures:
        return None
    return (
        f"tritonnx agrees with {how}, onnxruntime does not: "
        + "; ".join(_differences(names, got, want))
        + "; onnxruntime departs from the reference at "
        + "; ".join(departures[:3])
    )


def check(case: Case, save_dir: str | os.PathLike | None = None) -> Result:
    """Compiles and runs `case` with tritonnx and compares every output with onnxruntime.
    A mismatch or internal error is saved under save_dir (`seed-N.onnx`, `seed-N.npz` of
    the feeds, `seed-N.txt` with the details) when it is given."""
    import tritonnx
    from tritonnx.errors import TritonnxError

    t0 = time.perf_counter()
    res = Result(case.seed, "match", case.ops, opset=case.opset, special=has_specials(case.feeds))
    if case.invalid:
        res.status, res.detail = "invalid", case.invalid
        return res
    assert case.model is not None, "only an invalid case has no model"
    try:
        want = ort_run(case.model, case.feeds)
    except Exception as e:  # noqa: BLE001 - whatever onnxruntime refuses is skipped
        res.status, res.detail = "ort_refused", str(e).splitlines()[0] if str(e) else type(e).__name__
        res.seconds = time.perf_counter() - t0
        return res
    compiled = None
    try:
        compiled = tritonnx.compile(case.model, cache=False)
        got = compiled.run(dict(case.feeds))
        names = [o.name for o in case.model.graph.output]
        problems = _differences(names, got, want)
        if problems:
            res.status, res.detail = "mismatch", "; ".join(problems)
            verdict = tie_break(case, names, got, want)
            if verdict is not None:
                res.status, res.detail = "ort_differs", verdict
    except TritonnxError as e:
        cause = e.__cause__
        if cause is not None and not isinstance(cause, TritonnxError):  # a pass crashed: a bug, not a refusal
            res.status = "internal"
            res.detail = f"{type(e).__name__} from {type(cause).__name__}: {e}\n" + "".join(
                traceback.format_exception(cause, limit=-6)
            )
        else:
            res.status, res.detail = "refused", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    except Exception as e:  # noqa: BLE001 - any other exception is a bug, reported
        res.status = "internal"
        res.detail = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
    finally:
        del compiled  # its temporary artifact goes with it (compile() without out_dir)
    res.seconds = time.perf_counter() - t0
    if save_dir is not None and res.status in ("mismatch", "internal", "ort_differs"):
        save(case, res, save_dir)
    return res


def save(case: Case, res: Result, save_dir: str | os.PathLike) -> Path:
    """Writes the reproducer of a case: the model, its feeds and what went wrong."""
    assert case.model is not None, "only an invalid case has no model"
    d = Path(save_dir)
    d.mkdir(parents=True, exist_ok=True)
    stem = d / f"seed-{case.seed}"
    onnx.save(case.model, str(stem) + ".onnx")
    np.savez(str(stem) + ".npz", **case.feeds)
    Path(str(stem) + ".txt").write_text(
        f"seed {case.seed} (tritonnx.fuzz.generate({case.seed})), opset {case.opset}\n"
        f"status: {res.status}{' (an input holds inf, nan or a huge value)' if res.special else ''}\nops: {', '.join(case.ops)}\n\n{res.detail}\n\n"
        f"{onnx.printer.to_text(case.model.graph)}\n"
    )
    return stem
