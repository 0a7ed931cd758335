"""Symbolic sizes for dynamic shapes.

A model input with a symbolic dimension (ONNX `dim_param`, e.g. "batch" or "seq") that
the user compiles as dynamic keeps it symbolic: the compiled kernels take the symbol's
value as a run-time argument and the plan computes shapes, grids and the memory plan from
it at run time (as TorchInductor does with sympy sizes and `ks0`-style kernel arguments).

MLIR's tensor types hold concrete sizes, so a compile runs at a *sample* size per symbol:
a prime that divides no static size of the model (`pick_samples`). `shape_of` recovers the
symbols from the factorization of every dimension (13 * 113 * 64 with samples batch=13,
seq=113 is `batch*seq*64`) and returns a `SymInt`: an int (the sample value, so every
comparison and heuristic of the passes still works) that carries its sympy expression
through + - * // % and cdiv. Tiling heuristics read `hint(x)` (the expression at HINT per
symbol) instead of the sample, so tile choices do not depend on which primes were drawn;
`tile.symbol` ops materialize an expression inside a kernel (`TileBuilder.const`).

The driver compiles twice, at two sets of samples, and requires identical kernels and
plans: a size that is not a product of symbols and constants (seq + 1, a float 1/seq), a
data constant that depends on a symbol, or a decision taken on a sample's value shows up as
a difference and is reported instead of being silently specialized.

The module attribute `tnx.symbols = {name = sample, ...}` carries the samples in the IR,
so `tritonnx-opt` runs passes on a dumped dynamic module the same way.
"""

from __future__ import annotations

import contextlib
import contextvars

import sympy

from tritonnx.errors import CompileError

HINT = 128  # the size tile heuristics assume for every symbol
# sample primes, in the order tried; two disjoint sets for the two compiles of a dynamic model
PRIMES = (13, 113, 17, 109, 19, 107, 23, 103, 29, 101, 31, 97, 37, 89, 41, 83, 43, 79, 47, 73, 53, 71, 59, 67, 61)

_symbols: contextvars.ContextVar[dict | None] = contextvars.ContextVar("symbols", default=None)


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


class SymInt(int):
    """An int (the size at the compile's sample) carrying a sympy expression `expr` over the
    model's symbols. Arithmetic with ints keeps the expression; comparisons use the value."""

    expr: sympy.Expr

    def __new__(cls, value: int, expr: sympy.Expr):
        obj = int.__new__(cls, value)
        obj.expr = expr
        return obj

    def __repr__(self) -> str:
        return f"SymInt({int(self)}, {self.expr})"

    def _op(self, other, fn_int, fn_expr):
        if not isinstance(other, int) or isinstance(other, bool):
            return fn_int(int(self), other)
        return wrap(fn_int(int(self), int(other)), fn_expr(self.expr, expr_of(other)))

    def __add__(self, o):
        return self._op(o, lambda a, b: a + b, lambda a, b: a + b)

    def __radd__(self, o):
        return self._op(o, lambda a, b: b + a, lambda a, b: b + a)

    def __sub__(self, o):
        return self._op(o, lambda a, b: a - b, lambda a, b: a - b)

    def __rsub__(self, o):
        return self._op(o, lambda a, b: b - a, lambda a, b: b - a)

    def __mul__(self, o):
        return self._op(o, lambda a, b: a * b, lambda a, b: a * b)

    def __rmul__(self, o):
        return self._op(o, lambda a, b: b * a, lambda a, b: b * a)

    def __floordiv__(self, o):
        return self._op(o, lambda a, b: a // b, lambda a, b: sympy.floor(a / b))

    def __rfloordiv__(self, o):
        return self._op(o, lambda a, b: b // a, lambda a, b: sympy.floor(b / a))

    def __mod__(self, o):
        return self._op(o, lambda a, b: a % b, lambda a, b: sympy.Mod(a, b))

    def __rmod__(self, o):
        return self._op(o, lambda a, b: b % a, lambda a, b: sympy.Mod(b, a))

    def __neg__(self):
        return wrap(-int(self), -self.expr)

    def __pos__(self):
        return self

    def __abs__(self):
        return self if int(self) >= 0 else -self


def expr_of(x) -> sympy.Expr:
    return x.expr if isinstance(x, SymInt) else sympy.Integer(int(x))


def wrap(value: int, expr: sympy.Expr):
    """A SymInt, or a plain int where the expression has no symbol left."""
    expr = sympy.sympify(expr)
    # floor(-x) = -ceiling(x): keep floor and ceiling arguments non-negative (cdiv is -(-a // b))
    expr = expr.replace(
        lambda e: isinstance(e, sympy.floor) and e.args[0].could_extract_minus_sign(),
        lambda e: -sympy.ceiling(-e.args[0]),
    )
    if not expr.free_symbols:
        return int(value)
    return SymInt(value, expr)


_guards: contextvars.ContextVar[list | None] = contextvars.ContextVar("guards", default=None)


@contextlib.contextmanager
def collect_guards():
    """Collects the `guard`s recorded inside the block into the yielded list."""
    found: list = []
    token = _guards.set(found)
    try:
        yield found
    finally:
        _guards.reset(token)


def guard(condition: str, reason: str) -> None:
    """Records a condition on the symbols (Python text, e.g. "seq <= 1024") that the compiled
    plan needs; the runtime checks it for every new set of sizes and says `reason` if not."""
    found = _guards.get()
    if found is not None and [condition, reason] not in found:
        found.append([condition, reason])


def is_symbolic(x) -> bool:
    return isinstance(x, SymInt)


def active() -> dict | None:
    """{symbol name: sample value} of the dynamic compile in progress, or None."""
    return _symbols.get()


@contextlib.contextmanager
def scope(samples: dict | None):
    """Makes `samples` ({symbol name: sample prime}) the current symbols."""
    token = _symbols.set(dict(samples) if samples else None)
    try:
        yield
    finally:
        _symbols.reset(token)


def module_samples(op) -> dict | None:
    """The `tnx.symbols` attribute of a module op as {name: sample}, or None."""
    from mlir import ir

    if "tnx.symbols" not in op.attributes:
        return None
    attr = ir.DictAttr(op.attributes["tnx.symbols"])
    return {a.name: ir.IntegerAttr(a.attr).value for a in attr}


def recognize(d: int):
    """The dimension `d` as a SymInt when its factorization contains sample primes of the
    current symbols, else `d` itself."""
    samples = _symbols.get()
    if not samples or d <= 1 or isinstance(d, SymInt):
        return d
    rest, expr = int(d), sympy.Integer(1)
    for name, p in samples.items():
        while rest % p == 0:
            rest //= p
            expr = expr * _sym(name)
    return d if expr == 1 else SymInt(int(d), expr * rest)


def recognize_shape(shape) -> list:
    return [recognize(int(d)) for d in shape]


def hint(x) -> int:
    """The size tile heuristics should assume for `x`: its expression at HINT per symbol."""
    if not isinstance(x, SymInt):
        return int(x)
    return max(1, int(x.expr.subs({s: HINT for s in x.expr.free_symbols})))


def pick_samples(names: list[str], static_sizes: set[int], count: int = 2) -> list[dict]:
    """`count` sets of sample primes {name: prime}, all distinct, none dividing a static
    size of the model (so no static size is mistaken for a symbolic one)."""
    free = [p for p in PRIMES if not any(s % p == 0 for s in static_sizes if s > 1)]
    need = len(names) * count
    if len(free) < need:
        raise CompileError(
            "no sample sizes left for the dynamic dimensions: every candidate prime divides a static size of the model"
        )
    return [dict(zip(names, free[i * len(names) : (i + 1) * len(names)])) for i in range(count)]


# -- expressions as Python text (the plan) and as tile IR (kernels) ------------------------


def _split_rational(e: sympy.Expr) -> tuple[sympy.Expr, int]:
    """e = P / q with P an integer polynomial and q a positive int."""
    num, den = sympy.fraction(sympy.together(e))
    return sympy.expand(num), int(den)


def to_python(e) -> str:
    """An expression as Python integer arithmetic over the symbol names: `//` for floor,
    `%` for Mod, `-(-a // b)` for ceiling (sizes are non-negative)."""
    if isinstance(e, SymInt):
        e = e.expr
    elif isinstance(e, int):
        return str(e)
    if e.is_Integer:
        return str(int(e))
    if e.is_Symbol:
        return e.name
    if isinstance(e, sympy.floor) or isinstance(e, sympy.ceiling):
        p, q = _split_rational(e.args[0])
        if isinstance(e, sympy.floor):
            return f"(({to_python(p)}) // {q})" if q != 1 else to_python(p)
        return f"(-(-({to_python(p)}) // {q}))" if q != 1 else to_python(p)
    if isinstance(e, sympy.Mod):
        return f"(({to_python(e.args[0])}) % ({to_python(e.args[1])}))"
    if e.is_Add:
        return "(" + " + ".join(to_python(a) for a in e.args) + ")"
    if e.is_Mul:
        p, q = _split_rational(e)
        if q != 1:
            raise ValueError(f"size expression {e} is not an integer")
        return "*".join(to_python(a) for a in sympy.Mul.make_args(p)) if p.is_Mul else to_python(p)
    if e.is_Pow and e.exp.is_Integer and e.exp > 0:
        return "*".join([to_python(e.base)] * int(e.exp))
    raise ValueError(f"size expression {e} cannot be evaluated at run time")


def emit(b, e: sympy.Expr, leaf) -> object:
    """A scalar of the index type `b.idx` computing `e` in tile IR with builder `b`;
    `leaf(name)` gives the value of a symbol. Sizes are non-negative, so floor division is
    arith's signed division."""

    def go(e):
        if e.is_Integer:
            return b.const(int(e), [], b.idx)
        if e.is_Symbol:
            return leaf(e.name)
        if isinstance(e, (sympy.floor, sympy.ceiling)):
            p, q = _split_rational(e.args[0])
            v = go(p)
            if q == 1:
                return v
            if isinstance(e, sympy.ceiling):
                v = b.op("arith.addi", [v, b.const(q - 1, [], b.idx)], b.idx)
            return b.op("arith.divsi", [v, b.const(q, [], b.idx)], b.idx)
        if isinstance(e, sympy.Mod):
            return b.op("arith.remsi", [go(e.args[0]), go(e.args[1])], b.idx)
        if e.is_Add or e.is_Mul:
            if e.is_Mul:
                p, q = _split_rational(e)
                if q != 1:
                    raise ValueError(f"size expression {e} is not an integer")
                if p != e:
                    return go(p)
            name = "arith.addi" if e.is_Add else "arith.muli"
            terms = [go(a) for a in e.args]
            out = terms[0]
            for t in terms[1:]:
                out = b.op(name, [out, t], b.idx)
            return out
        if e.is_Pow and e.exp.is_Integer and e.exp > 0:
            base = go(e.base)
            out = base
            for _ in range(int(e.exp) - 1):
                out = b.op("arith.muli", [out, base], b.idx)
            return out
        raise ValueError(f"size expression {e} cannot be computed in a kernel")

    return go(sympy.sympify(e))
