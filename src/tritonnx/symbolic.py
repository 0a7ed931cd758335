"""Symbolic sizes: a dynamic dimension is `?` in the IR with its expression beside it.

A model's symbols are the dynamic dimensions of its graph inputs (ONNX `dim_param`s and
`-1`s, named after input and axis where unnamed), recorded on the module as
`tnx.symbols = {batch = 128 : i64, ...}`: each symbol with its size hint, the size the
tile heuristics assume (`--size-hint seq=512`). Every other dynamic size is an expression
over them, closed under +, *, floor and ceiling division, Mod, Min and Max (strided Conv,
pooling, Slice and Resize produce these; sympy holds them).

In MLIR a dynamic dimension is `?` in the tensor type and the type's encoding lists the
expressions of its `?` dimensions in order: `tensor<?x64x?xf32, ["batch", "floor(H/2) + 1"]>`.
`tritonnx.dialects.builders.shape_of` reads a shape as ints and `SymInt`s; `tensor_type`
writes one. A `SymInt` is an int (the expression at the size hints, so heuristics and
comparisons of sizes still work) carrying its sympy expression `expr` through + - * // %
and cdiv. Equality compares expressions, so a symbolic size never equals a number; `str`
and f-strings print the expression; `float(n)` and `n / k` raise SymbolicSizeError (a
dynamic size used as a number would be a silent specialization). Code that needs a number
(a count, an attribute) checks `is_symbolic` and refuses with the node's name.

Expressions are printed in sympy's notation and parsed back with an `ast` walk (never
`eval`): names, integers, + - * / // % **, floor, ceiling, Min, Max, Mod.

A data-dependent size (a count a kernel produces: NonZero, NonMaxSuppression) will be a
symbol too, with no input to read it from: the plan binds it at a sync point (see
ARCHITECTURE.md, "Symbolic sizes").
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import functools

import sympy

from tritonnx.errors import CompileError

HINT = 128  # the default size hint of a symbol

_hints: contextvars.ContextVar[dict | None] = contextvars.ContextVar("hints", default=None)


@functools.cache
def sym(name: str) -> sympy.Symbol:
    """The sympy symbol of a size named `name` (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


class SymbolicSizeError(CompileError):
    """A symbolic size was used where a number is needed."""


class SymInt(int):
    """An int (the size at the size hints) carrying a sympy expression `expr` over the
    model's symbols. Arithmetic with ints keeps the expression; ordering comparisons use
    the hint value (heuristics), equality the expression."""

    expr: sympy.Expr

    def __new__(cls, value: int, expr: sympy.Expr):
        obj = int.__new__(cls, value)
        obj.expr = expr
        return obj

    def __repr__(self) -> str:
        return f"SymInt({int(self)}, {self.expr})"

    def __str__(self) -> str:
        return text(self.expr)

    def __format__(self, spec: str) -> str:
        return format(text(self.expr), spec) if not spec or spec[-1:] == "s" else format(int(self), spec)

    def __float__(self):
        raise SymbolicSizeError(f"the dynamic size {self.expr} was used as a number (a float)")

    def __truediv__(self, other):
        raise SymbolicSizeError(f"the dynamic size {self.expr} was divided as a float (/ {other})")

    def __rtruediv__(self, other):
        raise SymbolicSizeError(f"{other} was divided by the dynamic size {self.expr} as a float")

    def __eq__(self, other):
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        a, b = self.expr, expr_of(other)
        if a == b:
            return True
        return isinstance(other, SymInt) and sympy.expand(a - b) == 0  # a symbolic size is never a number

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = int.__hash__

    def _op(self, other, fn_int, fn_expr):
        if not isinstance(other, int) or isinstance(other, bool):
            return fn_int(int(self), other)
        return wrap(fn_int(int(self), int(other)), _combine(fn_expr, self.expr, expr_of(other)))

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


_FNS: dict = {}


def _combine(fn, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """fn(a, b), normalized, memoized: the passes compute the same sizes many times."""
    key = (fn.__code__, a, b)
    out = _FNS.get(key)
    if out is None:
        if len(_FNS) > 100_000:
            _FNS.clear()
        out = _FNS[key] = _normal(sympy.sympify(fn(a, b)))
    return out


def expr_of(x) -> sympy.Expr:
    return x.expr if isinstance(x, SymInt) else sympy.Integer(int(x))


_hints_key_var: contextvars.ContextVar[tuple] = contextvars.ContextVar("hints_key", default=())
_type_cache: contextvars.ContextVar[dict | None] = contextvars.ContextVar("type_cache", default=None)


def type_cache() -> dict | None:
    """{MLIR tensor type: its sizes} for the current scope (None outside one). Types are
    uniqued per MLIR context and compare by identity; the keys keep their context alive
    until the scope ends, so no type of another context can take a cached one's place."""
    return _type_cache.get()


def hints_key() -> tuple:
    """The current size hints as a sorted tuple of (name, hint): a cache key."""
    return _hints_key_var.get()


@functools.lru_cache(maxsize=65536)
def _value_at(expr: sympy.Expr, hints: tuple) -> int:
    values = dict(hints)
    return int(expr.xreplace({s: sympy.Integer(values.get(s.name, HINT)) for s in expr.free_symbols}))


def value_at(expr: sympy.Expr, size: int) -> int:
    """The value of `expr` with every symbol equal to `size`."""
    return _value_at(expr, tuple((s.name, size) for s in sorted(expr.free_symbols, key=str)))


def at_hints(expr: sympy.Expr) -> int:
    """The value of `expr` with every symbol at its size hint."""
    return _value_at(expr, hints_key())


@functools.lru_cache(maxsize=65536)
def _normal(expr: sympy.Expr) -> sympy.Expr:
    # floor(-x) = -ceiling(x): keep floor and ceiling arguments non-negative (cdiv is -(-a // b))
    return expr.replace(
        lambda e: isinstance(e, sympy.floor) and e.args[0].could_extract_minus_sign(),
        lambda e: -sympy.ceiling(-e.args[0]),
    )


@functools.lru_cache(maxsize=65536)
def _constant(expr: sympy.Expr) -> bool:
    return not expr.free_symbols


def wrap(value: int | None, expr) -> int:
    """A SymInt of `expr` (its value `value`, or the expression at the hints when None),
    or a plain int where the expression has no symbol left."""
    expr = _normal(expr if isinstance(expr, sympy.Basic) else sympy.sympify(expr))
    if _constant(expr):
        return int(expr)
    return SymInt(at_hints(expr) if value is None else int(value), expr)


@functools.lru_cache(maxsize=65536)
def _made(text: str, hints: tuple) -> int:
    return wrap(None, parse(text))


def make(expr) -> int:
    """The size of expression `expr` (sympy or text): a SymInt, or an int if it is constant."""
    if isinstance(expr, str):
        return _made(expr, hints_key())
    return wrap(None, expr)


def smin(a, b):
    """min of two sizes, symbolic where either is (sympy Min)."""
    if not (is_symbolic(a) or is_symbolic(b)):
        return min(int(a), int(b))
    return wrap(None, sympy.Min(expr_of(a), expr_of(b)))


def smax(a, b):
    """max of two sizes, symbolic where either is (sympy Max)."""
    if not (is_symbolic(a) or is_symbolic(b)):
        return max(int(a), int(b))
    return wrap(None, sympy.Max(expr_of(a), expr_of(b)))


_FUNCS = {"floor": sympy.floor, "ceiling": sympy.ceiling, "Min": sympy.Min, "Max": sympy.Max, "Mod": sympy.Mod}


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> sympy.Expr:
    """A size expression from its text (sympy's printing: names, integers, + - * / // % **,
    floor, ceiling, Min, Max, Mod), by an `ast` walk. Raises ValueError for anything else."""

    def go(n):
        if isinstance(n, ast.Expression):
            return go(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
            return sympy.Integer(n.value)
        if isinstance(n, ast.Name):
            return sym(n.id)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = go(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp):
            a, b = go(n.left), go(n.right)
            ops = {
                ast.Add: lambda: a + b,
                ast.Sub: lambda: a - b,
                ast.Mult: lambda: a * b,
                ast.Div: lambda: a / b,
                ast.FloorDiv: lambda: sympy.floor(a / b),
                ast.Mod: lambda: sympy.Mod(a, b),
                ast.Pow: lambda: a**b,
            }
            if type(n.op) in ops:
                return ops[type(n.op)]()
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _FUNCS and not n.keywords:
            return _FUNCS[n.func.id](*[go(a) for a in n.args])
        raise ValueError(f"not a size expression: {text!r}")

    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"not a size expression: {text!r}") from None
    return go(tree)


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


def add_guards(module, guards: list) -> None:
    """Appends `guards` ([condition, reason]) to the module op's `tnx.guards` (strings
    "condition: reason"), after the ones already there, without repeating one."""
    from mlir import ir

    old = list(ir.ArrayAttr(module.attributes["tnx.guards"])) if "tnx.guards" in module.attributes else []
    have = {ir.StringAttr(g).value for g in old}
    new = [ir.StringAttr.get(t) for t in dict.fromkeys(f"{c}: {r}" for c, r in guards) if t not in have]
    module.attributes["tnx.guards"] = ir.ArrayAttr.get(old + new)


def is_symbolic(x) -> bool:
    return isinstance(x, SymInt)


def active() -> dict | None:
    """{symbol name: size hint} of the compile in progress, or None for a static one."""
    return _hints.get()


@contextlib.contextmanager
def scope(hints: dict | None):
    """Makes `hints` ({symbol name: size hint}) the current symbols."""
    token = _hints.set(dict(hints) if hints else None)
    key_token = _hints_key_var.set(tuple(sorted(hints.items())) if hints else ())
    cache_token = _type_cache.set({} if hints else None)
    try:
        yield
    finally:
        _type_cache.reset(cache_token)
        _hints_key_var.reset(key_token)
        _hints.reset(token)


def module_hints(op) -> dict | None:
    """The `tnx.symbols` attribute of a module op as {name: size hint}, or None."""
    from mlir import ir

    if "tnx.symbols" not in op.attributes:
        return None
    attr = ir.DictAttr(op.attributes["tnx.symbols"])
    return {a.name: ir.IntegerAttr(a.attr).value for a in attr}


def hint(x) -> int:
    """The size tile heuristics should assume for `x`: its value at the size hints."""
    return max(1, int(x)) if isinstance(x, SymInt) else int(x)


# -- expressions as Python text (the plan) and as tile IR (kernels) ------------------------


@functools.lru_cache(maxsize=65536)
def text(e: sympy.Expr) -> str:
    """`e` in sympy's notation (memoized: printing is the slow part of sympy)."""
    return str(e)


@functools.lru_cache(maxsize=65536)
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
    return _to_python(sympy.sympify(e))


@functools.lru_cache(maxsize=65536)
def _to_python(e: sympy.Expr) -> str:
    if e.is_Integer:
        return str(int(e))
    if e.is_Symbol:
        return e.name
    if isinstance(e, sympy.floor) or isinstance(e, sympy.ceiling):
        p, q = _split_rational(e.args[0])
        if isinstance(e, sympy.floor):
            return f"(({_to_python(p)}) // {q})" if q != 1 else _to_python(p)
        return f"(-(-({_to_python(p)}) // {q}))" if q != 1 else _to_python(p)
    if isinstance(e, sympy.Mod):
        return f"(({_to_python(e.args[0])}) % ({_to_python(e.args[1])}))"
    if isinstance(e, (sympy.Min, sympy.Max)):
        return f"{'min' if isinstance(e, sympy.Min) else 'max'}({', '.join(_to_python(a) for a in e.args)})"
    if e.is_Add:
        return "(" + " + ".join(_to_python(a) for a in e.args) + ")"
    if e.is_Mul:
        p, q = _split_rational(e)
        if q != 1:
            raise ValueError(f"size expression {e} is not an integer")
        return "*".join(_to_python(a) for a in sympy.Mul.make_args(p)) if p.is_Mul else _to_python(p)
    if e.is_Pow and e.exp.is_Integer and e.exp > 0:
        return "*".join([_to_python(e.base)] * int(e.exp))
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
        if isinstance(e, (sympy.Min, sympy.Max)):
            name = "arith.minsi" if isinstance(e, sympy.Min) else "arith.maxsi"
            terms = [go(a) for a in e.args]
            out = terms[0]
            for t in terms[1:]:
                out = b.op(name, [out, t], b.idx)
            return out
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


def broadcast_shapes(*shapes) -> list:
    """NumPy broadcasting of shapes of ints and SymInts (ONNX's multidirectional
    broadcasting). A symbolic size against a static one other than 1 is that static size (the
    model is only valid there); two different symbolic sizes raise SymbolicSizeError."""
    rank = max((len(s) for s in shapes), default=0)
    out: list = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        d: int = 1
        for x in dims:
            if is_symbolic(x) and not is_symbolic(d):
                d = x if d == 1 else d
            elif is_symbolic(d) and not is_symbolic(x):
                d = d if x == 1 else x
            elif is_symbolic(x) and is_symbolic(d):
                if not d == x:
                    raise SymbolicSizeError(f"sizes {d} and {x} cannot be broadcast together")
            elif int(d) == 1:
                d = x
            elif int(x) not in (1, int(d)):
                raise ValueError(f"sizes {d} and {x} cannot be broadcast together")
        out.append(d)
    return out
