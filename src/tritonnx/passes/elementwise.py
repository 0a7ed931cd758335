"""Elementwise ONNX ops as tile IR, for lower-to-tile's Emitter.

Each function takes the TileBuilder, the operand tiles (broadcast to the kernel's tile, in
the op's operand order; None for an absent optional), the op's attributes and the result's
element type, and returns the result tile. Floating-point math runs in f32 (half types are
widened on load); only `tl` core functions are used, so every kernel also runs in Triton's
interpreter. Semantics follow the ONNX operator pages at the versions in `dialects/ops.py`.
"""

from __future__ import annotations

import math

from mlir import ir

from tritonnx.dialects.tile import TileBuilder, elem, is_float

INF = float("inf")


def _where(b: TileBuilder, c, x, y):
    return b.select(c, x, y)


def _exp(b, x):
    return b.unary("math.exp", x)


def _log(b, x):
    return b.unary("math.log", x)


def _abs(b, x):
    return b.unary("math.absf", x) if is_float(elem(x)) else b.select(b.cmp("lt", x, 0), b.binary("sub", 0, x), x)


def _neg(b, x):
    return b.unary("arith.negf", x) if is_float(elem(x)) else b.binary("sub", b.full_like(x, 0), x)


def _recip(b, x):
    return b.binary("div", b.full_like(x, 1.0), x)


def _tanh(b, x):
    ax = _abs(b, x)
    t = _exp(b, b.binary("mul", ax, -2.0))  # in (0, 1]: no overflow
    r = b.binary("div", b.binary("sub", b.full_like(t, 1.0), t), b.binary("add", t, 1.0))
    x2 = b.binary("mul", ax, ax)  # near 0, 1 - t cancels: use the series to x^7
    series = b.binary(
        "mul",
        ax,
        b.binary(
            "add",
            b.full_like(x2, 1.0),
            b.binary(
                "mul",
                x2,
                b.binary(
                    "add",
                    b.full_like(x2, -1.0 / 3.0),
                    b.binary(
                        "mul", x2, b.binary("add", b.full_like(x2, 2.0 / 15.0), b.binary("mul", x2, -17.0 / 315.0))
                    ),
                ),
            ),
        ),
    )
    r = _where(b, b.cmp("lt", ax, 0.1), series, r)
    return _where(b, b.cmp("lt", x, 0.0), _neg(b, r), r)


def _log1p(b, y):
    """log(1 + y), accurate for small y (Kahan: log(u) * y / (u - 1) with u = 1 + y)."""
    u = b.binary("add", y, 1.0)
    d = b.binary("sub", u, 1.0)
    return _where(b, b.cmp("eq", d, 0.0), y, b.binary("div", b.binary("mul", _log(b, u), y), d))


def _softplus(b, x):
    return b.binary("add", b.binary("max", x, 0.0), _log1p(b, _exp(b, _neg(b, _abs(b, x)))))


def _sigmoid(b, x):
    return _recip(b, b.binary("add", _exp(b, _neg(b, x)), 1.0))


def _floor(b, x):
    return b.unary("math.floor", x)


def _round_even(b, x):
    """Round half to even from floor(x) and the exact fraction x - floor(x) (x + 0.5 would
    round away 0.49999997 and odd integers past 2^23). A zero result keeps x's sign
    (Round(-0.3) is -0.0): x * 0.0 is a zero of x's sign."""
    r = _floor(b, x)
    frac = b.binary("sub", x, r)  # NaN for +-inf: neither test below holds, r stays
    odd = b.cmp("ne", b.binary("sub", r, b.binary("mul", _floor(b, b.binary("mul", r, 0.5)), 2.0)), 0.0)
    up = b.binary("or", b.cmp("gt", frac, 0.5), b.and_(b.cmp("eq", frac, 0.5), odd))
    r = _where(b, up, b.binary("add", r, 1.0), r)
    return _where(b, b.cmp("eq", r, 0.0), b.binary("mul", x, 0.0), r)


def _trunc(b, x):
    return _where(b, b.cmp("lt", x, 0.0), b.unary("math.ceil", x), _floor(b, x))


def _sign(b, x):
    one, zero = b.full_like(x, 1), b.full_like(x, 0)
    s = _where(b, b.cmp("gt", x, zero), one, _where(b, b.cmp("lt", x, zero), _neg(b, one), zero))
    return _where(b, b.cmp("ne", x, x), x, s) if is_float(elem(x)) else s


def _pow(b, x, y):
    ax = _abs(b, x)
    r = _exp(b, b.binary("mul", y, _log(b, ax)))
    y_int = b.cmp("eq", _floor(b, y), y)
    odd = b.and_(y_int, b.cmp("eq", b.binary("sub", y, b.binary("mul", _floor(b, b.binary("mul", y, 0.5)), 2.0)), 1.0))
    negative = _where(b, y_int, _where(b, odd, _neg(b, r), r), b.full_like(r, math.nan))
    r = _where(b, b.cmp("lt", x, 0.0), negative, r)
    return _where(b, b.cmp("eq", y, 0.0), b.full_like(r, 1.0), r)


def _mod(b, x, y, fmod):
    """Mod-13. Floats: C's fmod (`arith.remf`, exact: the dividend's sign, fmod(x, inf) = x for
    finite x, NaN for an infinite dividend or a zero divisor, a zero keeps the dividend's
    sign); fmod=0 then takes the divisor's sign as NumPy's np.mod does (npy_divmod): a
    nonzero remainder of the other sign gets the divisor added (mod(-3, inf) = inf), a zero
    one becomes a zero of the divisor's sign. Integers: C's remainder, fixed up the same way."""
    if is_float(elem(x)):
        r = b.binary("mod", x, y)
        if fmod:
            return r
        fix = b.and_(b.cmp("ne", r, 0.0), b.cmp("ne", b.cmp("lt", r, 0.0), b.cmp("lt", y, 0.0)))
        r = _where(b, fix, b.binary("add", r, y), r)
        signed_zero = _where(b, b.cmp("lt", y, 0.0), b.full_like(r, -0.0), b.full_like(r, 0.0))
        return _where(b, b.cmp("eq", r, 0.0), signed_zero, r)
    r = b.binary("mod", x, y)  # C remainder: the dividend's sign
    if fmod:
        return r
    fix = b.and_(b.cmp("ne", r, 0), b.cmp("ne", b.cmp("lt", r, 0), b.cmp("lt", y, 0)))
    return _where(b, fix, b.binary("add", r, y), r)


def _cast(b: TileBuilder, x: ir.Value, target: ir.Type) -> ir.Value:
    if isinstance(target, ir.IntegerType) and target.width == 1:
        return b.cmp("ne", x, b.full_like(x, 0))
    if is_float(target) and ir.FloatType(target).width < 32:
        return b.convert(b.convert(x, target), b.f32)  # round to the half type, compute in f32
    if isinstance(target, ir.IntegerType) and is_float(elem(x)):
        return b.convert(_trunc(b, x), target)
    return b.convert(x, target)


def _width(t: ir.Type) -> int:
    return ir.FloatType(t).width if is_float(t) else ir.IntegerType(t).width


def _bitcast(b: TileBuilder, x: ir.Value, source: ir.Type, target: ir.Type) -> ir.Value:
    """BitCast-26: `x`'s bits (of ONNX type `source`, loaded in its compute type) as
    `target`, through `arith.bitcast` (Triton's `.to(T, bitcast=True)`). The tile is first
    narrowed back to a type of the source's own width (a widened half, an 8- or 16-bit or
    unsigned integer held in i32 or i64: exact), and the result converted to `target` (an
    unsigned integer from the signless one of its width). bool is one byte in memory,
    `0` or `1`: to and from it the cast is by value. Under autocast a float side may have
    become a half type: the bits are those of the integer side's width."""
    if _width(target) == 1:
        return b.cmp("ne", x, b.full_like(x, 0))
    if _width(source) == 1:
        return b.convert(x, target)
    w = _width(source) if is_float(target) else _width(target)
    floats = {16: ir.F16Type.get(), 32: b.f32, 64: ir.F64Type.get()}

    def of_width(t: ir.Type) -> ir.Type:
        if is_float(t):
            return t if _width(t) == w else floats[w]
        return ir.IntegerType.get_signless(w)

    bits = b.convert(x, of_width(source))
    out = of_width(target)
    if out != elem(bits):
        bits = b.unary_to("arith.bitcast", bits, out)
    return b.convert(bits, target)


TAN_3PI_8, TAN_PI_8 = 2.414213562373095, 0.4142135623730950
# Cephes (Moshier) atanf: atan(t) = t + t z P(z), z = t^2, |t| <= tan(pi/8); about 1 ulp in f32
ATANF_P = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)
# Cephes atan (double): atan(t) = t + t z P(z) / Q(z), |t| <= 0.66, Q monic; about 1 ulp in f64
ATAN_P = (
    -8.750608600031904122785e-1,
    -1.615753718733365076637e1,
    -7.500855792314704667340e1,
    -1.228866684490136173410e2,
    -6.485021904942025371773e1,
)
ATAN_Q = (
    1.0,
    2.485846490142306297962e1,
    1.650270098316988542046e2,
    4.328810604912902668951e2,
    4.853903996359136964868e2,
    1.945506571482613964425e2,
)
ATAN_MOREBITS = 6.123233995736765886130e-17  # pi/2 - float(pi/2), added back in f64


def _horner(b, z, coeffs):
    acc = b.full_like(z, coeffs[0])
    for c in coeffs[1:]:
        acc = b.binary("add", b.binary("mul", acc, z), c)
    return acc


def _atan(b, x):
    """Atan-22 by Cephes' method (`tl` has no atan, and libdevice does not run in the
    interpreter): |x| reduced to t in [0, tan(pi/8)] (f64: [0, 0.66]) by atan(x) = pi/4 +
    atan((x - 1) / (x + 1)) and, past tan(3pi/8), pi/2 + atan(-1/x); then a minimax
    polynomial in t^2 (f64: a rational one). atan(+-inf) = +-pi/2, NaN stays NaN, -0 stays -0."""
    f64 = isinstance(elem(x), ir.F64Type)
    ax = _abs(b, x)
    big = b.cmp("gt", ax, TAN_3PI_8)
    mid = b.cmp("gt", ax, 0.66 if f64 else TAN_PI_8)
    t = _where(
        b,
        big,
        b.binary("div", b.full_like(ax, -1.0), ax),
        _where(b, mid, b.binary("div", b.binary("sub", ax, 1.0), b.binary("add", ax, 1.0)), ax),
    )
    z = b.binary("mul", t, t)
    if f64:
        poly = b.binary("div", b.binary("mul", z, _horner(b, z, ATAN_P)), _horner(b, z, ATAN_Q))
        extra = _where(
            b,
            big,
            b.full_like(ax, ATAN_MOREBITS),
            _where(b, mid, b.full_like(ax, 0.5 * ATAN_MOREBITS), b.full_like(ax, 0.0)),
        )
        t = b.binary("add", t, extra)
    else:
        poly = b.binary("mul", z, _horner(b, z, ATANF_P))
    base = _where(
        b, big, b.full_like(ax, math.pi / 2), _where(b, mid, b.full_like(ax, math.pi / 4), b.full_like(ax, 0.0))
    )
    r = b.binary("add", base, b.binary("add", b.binary("mul", t, poly), t))
    return _where(b, b.cmp("eq", x, 0.0), x, _where(b, b.cmp("lt", x, 0.0), _neg(b, r), r))


def _asin(b, x):
    """Asin-22: atan(x / sqrt((1 - x)(1 + x))); (1 - x) is exact near 1, x = +-1 divides by
    zero into atan(+-inf) = +-pi/2, |x| > 1 takes the root of a negative: NaN."""
    one = b.full_like(x, 1.0)
    root = b.unary("math.sqrt", b.binary("mul", b.binary("sub", one, x), b.binary("add", x, 1.0)))
    return _atan(b, b.binary("div", x, root))


def _acos(b, x):
    """Acos-22: 2 atan(sqrt((1 - x) / (1 + x))), without pi/2 - asin(x)'s cancellation near
    x = 1; acos(-1) = 2 atan(inf) = pi, |x| > 1 is NaN."""
    one = b.full_like(x, 1.0)
    ratio = b.binary("div", b.binary("sub", one, x), b.binary("add", x, 1.0))
    return b.binary("mul", _atan(b, b.unary("math.sqrt", ratio)), 2.0)


def _compare(pred):
    return lambda b, x, a: b.cmp(pred, x[0], x[1])


def _bits(kind):
    return lambda b, x, a: b.binary(kind, x[0], x[1])


SQRT2 = math.sqrt(2.0)

OPS = {
    "tnx.add": lambda b, x, a: b.binary("add", x[0], x[1]),
    "tnx.sub": lambda b, x, a: b.binary("sub", x[0], x[1]),
    "tnx.mul": lambda b, x, a: b.binary("mul", x[0], x[1]),
    "tnx.div": lambda b, x, a: b.binary("div", x[0], x[1]),
    "tnx.max": lambda b, x, a: b.binary("max", x[0], x[1]),
    "tnx.min": lambda b, x, a: b.binary("min", x[0], x[1]),
    "tnx.pow": lambda b, x, a: _pow(b, x[0], x[1]),
    "tnx.mod": lambda b, x, a: _mod(b, x[0], x[1], a.get("fmod", 0)),
    "tnx.equal": _compare("eq"),
    "tnx.less": _compare("lt"),
    "tnx.greater": _compare("gt"),
    "tnx.less_or_equal": _compare("le"),
    "tnx.greater_or_equal": _compare("ge"),
    "tnx.and": _bits("and"),
    "tnx.or": _bits("or"),
    "tnx.xor": _bits("xor"),
    "tnx.bitwise_and": _bits("and"),
    "tnx.bitwise_or": _bits("or"),
    "tnx.bitwise_xor": _bits("xor"),
    "tnx.not": lambda b, x, a: b.binary("xor", x[0], b.full_like(x[0], 1)),
    "tnx.bitwise_not": lambda b, x, a: b.binary("xor", x[0], b.full_like(x[0], -1)),
    "tnx.bit_shift": lambda b, x, a: b.binary("shl" if a["direction"] == "LEFT" else "shr", x[0], x[1]),
    "tnx.where": lambda b, x, a: b.select(x[0], x[1], x[2]),
    "tnx.abs": lambda b, x, a: _abs(b, x[0]),
    "tnx.neg": lambda b, x, a: _neg(b, x[0]),
    "tnx.reciprocal": lambda b, x, a: _recip(b, x[0]),
    "tnx.exp": lambda b, x, a: _exp(b, x[0]),
    "tnx.log": lambda b, x, a: _log(b, x[0]),
    "tnx.sqrt": lambda b, x, a: b.unary("math.sqrt", x[0]),
    "tnx.erf": lambda b, x, a: b.unary("math.erf", x[0]),
    "tnx.sin": lambda b, x, a: b.unary("math.sin", x[0]),
    "tnx.cos": lambda b, x, a: b.unary("math.cos", x[0]),
    "tnx.tan": lambda b, x, a: b.binary("div", b.unary("math.sin", x[0]), b.unary("math.cos", x[0])),
    "tnx.sinh": lambda b, x, a: b.binary("mul", b.binary("sub", _exp(b, x[0]), _exp(b, _neg(b, x[0]))), 0.5),
    "tnx.cosh": lambda b, x, a: b.binary("mul", b.binary("add", _exp(b, x[0]), _exp(b, _neg(b, x[0]))), 0.5),
    "tnx.asinh": lambda b, x, a: _log(
        b, b.binary("add", x[0], b.unary("math.sqrt", b.binary("add", b.binary("mul", x[0], x[0]), 1.0)))
    ),
    "tnx.acosh": lambda b, x, a: _log(
        b, b.binary("add", x[0], b.unary("math.sqrt", b.binary("sub", b.binary("mul", x[0], x[0]), 1.0)))
    ),
    "tnx.atanh": lambda b, x, a: b.binary(
        "mul",
        _log(
            b,
            b.binary(
                "div", b.binary("add", b.full_like(x[0], 1.0), x[0]), b.binary("sub", b.full_like(x[0], 1.0), x[0])
            ),
        ),
        0.5,
    ),
    "tnx.tanh": lambda b, x, a: _tanh(b, x[0]),
    "tnx.atan": lambda b, x, a: _atan(b, x[0]),
    "tnx.asin": lambda b, x, a: _asin(b, x[0]),
    "tnx.acos": lambda b, x, a: _acos(b, x[0]),
    "tnx.floor": lambda b, x, a: _floor(b, x[0]),
    "tnx.ceil": lambda b, x, a: b.unary("math.ceil", x[0]),
    "tnx.round": lambda b, x, a: _round_even(b, x[0]),
    "tnx.sign": lambda b, x, a: _sign(b, x[0]),
    "tnx.is_nan": lambda b, x, a: b.cmp("ne", x[0], x[0]),
    "tnx.is_inf": lambda b, x, a: _is_inf(b, x[0], a.get("detect_positive", 1), a.get("detect_negative", 1)),
    "tnx.relu": lambda b, x, a: b.binary("max", x[0], b.full_like(x[0], 0)),
    "tnx.sigmoid": lambda b, x, a: _sigmoid(b, x[0]),
    "tnx.softplus": lambda b, x, a: _softplus(b, x[0]),
    "tnx.softsign": lambda b, x, a: b.binary("div", x[0], b.binary("add", _abs(b, x[0]), 1.0)),
    "tnx.mish": lambda b, x, a: b.binary("mul", x[0], _tanh(b, _softplus(b, x[0]))),
    "tnx.hard_sigmoid": lambda b, x, a: b.binary(
        "max", b.binary("min", b.binary("add", b.binary("mul", x[0], a["alpha"]), a["beta"]), 1.0), 0.0
    ),
    "tnx.hard_swish": lambda b, x, a: b.binary(
        "mul", x[0], b.binary("max", b.binary("min", b.binary("add", b.binary("mul", x[0], 1.0 / 6.0), 0.5), 1.0), 0.0)
    ),
    "tnx.leaky_relu": lambda b, x, a: _where(b, b.cmp("lt", x[0], 0.0), b.binary("mul", x[0], a["alpha"]), x[0]),
    "tnx.prelu": lambda b, x, a: _where(b, b.cmp("lt", x[0], b.full_like(x[0], 0)), b.binary("mul", x[0], x[1]), x[0]),
    "tnx.elu": lambda b, x, a: _where(
        b, b.cmp("lt", x[0], 0.0), b.binary("mul", b.binary("sub", _exp(b, x[0]), 1.0), a["alpha"]), x[0]
    ),
    "tnx.celu": lambda b, x, a: b.binary(
        "add",
        b.binary("max", x[0], 0.0),
        b.binary(
            "min", b.binary("mul", b.binary("sub", _exp(b, b.binary("div", x[0], a["alpha"])), 1.0), a["alpha"]), 0.0
        ),
    ),
    "tnx.selu": lambda b, x, a: b.binary(
        "mul",
        _where(
            b, b.cmp("le", x[0], 0.0), b.binary("sub", b.binary("mul", _exp(b, x[0]), a["alpha"]), a["alpha"]), x[0]
        ),
        a["gamma"],
    ),
    "tnx.thresholded_relu": lambda b, x, a: _where(b, b.cmp("gt", x[0], a["alpha"]), x[0], b.full_like(x[0], 0.0)),
    "tnx.shrink": lambda b, x, a: _where(
        b,
        b.cmp("lt", x[0], -a["lambd"]),
        b.binary("add", x[0], a["bias"]),
        _where(b, b.cmp("gt", x[0], a["lambd"]), b.binary("sub", x[0], a["bias"]), b.full_like(x[0], 0)),
    ),
    "tnx.gelu": lambda b, x, a: _gelu(b, x[0], a.get("approximate", "none")),
}


def _is_inf(b, x, positive, negative):
    hits = [b.cmp("eq", x, v) for v, on in ((INF, positive), (-INF, negative)) if on]
    if not hits:
        return b.cmp("ne", b.full_like(x, 0.0), b.full_like(x, 0.0))  # all false
    return hits[0] if len(hits) == 1 else b.binary("or", hits[0], hits[1])


def _gelu(b, x, approximate):
    if approximate == "tanh":
        inner = b.binary(
            "mul",
            b.binary("add", x, b.binary("mul", b.binary("mul", b.binary("mul", x, x), x), 0.044715)),
            math.sqrt(2.0 / math.pi),
        )
        return b.binary("mul", b.binary("mul", x, 0.5), b.binary("add", _tanh(b, inner), 1.0))
    return b.binary(
        "mul", b.binary("mul", x, 0.5), b.binary("add", b.unary("math.erf", b.binary("div", x, SQRT2)), 1.0)
    )


def clip(b: TileBuilder, x, lo, hi):
    if lo is not None:
        x = b.binary("max", x, lo)
    if hi is not None:
        x = b.binary("min", x, hi)
    return x


def emit(
    b: TileBuilder, name: str, xs: list, attrs: dict, result: ir.Type, source: ir.Type | None = None
) -> ir.Value | None:
    """The result tile of elementwise op `name`, or None if it is not elementwise. `source`:
    the element type of the op's first operand in the graph (BitCast reads its bits)."""
    if name == "tnx.bit_cast":
        return _bitcast(b, xs[0], source if source is not None else elem(xs[0]), result)
    if name == "tnx.clip":
        return clip(b, xs[0], xs[1], xs[2])
    if name in ("tnx.cast", "tnx.cast_like"):
        return _cast(b, xs[0], result)
    fn = OPS.get(name)
    if fn is None:
        return None
    if name == "tnx.pow" and not is_float(result):  # integer powers: exact through f64, then rounded
        f64 = ir.F64Type.get()
        r = _pow(b, b.convert(xs[0], f64), b.convert(xs[1], f64))
        return b.convert(_round_even(b, r), result)
    xs = [_common(b, xs, name)[i] if x is not None else None for i, x in enumerate(xs)]
    return fn(b, xs, attrs)


def _common(b, xs, name):
    """Operands promoted to one element type where the op mixes them (Where's condition and
    PRelu's slope keep theirs)."""
    if name == "tnx.where":
        return xs
    types = [elem(x) for x in xs if x is not None]
    if any(is_float(t) for t in types) and not all(is_float(t) for t in types):
        return [b.convert(x, b.f32) if x is not None and not is_float(elem(x)) else x for x in xs]
    return xs
