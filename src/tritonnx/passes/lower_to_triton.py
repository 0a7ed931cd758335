"""lower-to-triton: prints each tile-level kernel as an `@triton.jit` Python function.

A 1:1 printer: every tile/arith/math/scf op becomes one Triton expression; it makes no
decisions. What makes the source read like a hand-written kernel comes from the IR:
- names: a value whose op has a NameLoc (`loc("offs_m"(...))`, given by lower-to-tile) is
  a variable of that name; the kernel's arguments are named by their locations too
  (`x_ptr`, `w_ptr`, `bias_ptr`, `y_ptr`). A value used once, in the same block, by an
  expression is written inline; other values get a line of their own.
- block sizes: `tile.constexpr`, `tile.range`'s `block` and the `dims` of `tile.full`,
  `tile.splat` and `tile.broadcast` name the kernel's `tl.constexpr` parameters, so the
  source holds for every block size the choose-blocks pass offered: its autotune candidates are
  `triton.Config`s of the one kernel (`CONFIGS`).
- Triton's broadcasting: arith ops need equal shapes, Triton broadcasts its operands, so a
  splat, broadcast or splat constant feeding an expression is written as its operand or
  literal; where Triton needs the whole shape (a load's or store's pointer, a dot, a
  reduction, a loop-carried value) it is written `tl.broadcast_to` / `tl.full` / `tl.zeros`.

The pass leaves `{kernel symbol: source}` in the current session's `sources`, tags each
kernel with `tnx.source` (its file, `kernels/<symbol>.py`), and turns the autotune clones
of a kernel into `tnx.configs` on it after checking that each prints to the same source.
"""

from __future__ import annotations

from typing import NamedTuple

from mlir import ir

from tritonnx import symbolic
from tritonnx.dialects.builders import type_shape
from tritonnx.dialects.tile import elem, shape, splat_value
from tritonnx.passes import current_session, functions, ops

NAME = "lower-to-triton"

# Python's operator precedence (higher binds tighter)
ATOM, UNARY_PREC, CMP_PREC = 100, 14, 7
BINARY = {
    "arith.addi": ("+", 12),
    "arith.addf": ("+", 12),
    "arith.subi": ("-", 12),
    "arith.subf": ("-", 12),
    "arith.muli": ("*", 13),
    "arith.mulf": ("*", 13),
    "arith.divf": ("/", 13),
    "arith.divsi": ("//", 13),
    "arith.remsi": ("%", 13),
    "arith.remf": ("%", 13),  # C's fmod, as Triton's % on floats is
    "arith.andi": ("&", 10),
    "arith.ori": ("|", 8),
    "arith.xori": ("^", 9),
    "arith.shli": ("<<", 11),
    "arith.shrsi": (">>", 11),
}
CMP = {0: "==", 1: "!=", 2: "<", 3: "<=", 4: ">", 5: ">="}
CMPF = {1: "==", 2: ">", 3: ">=", 4: "<", 5: "<=", 13: "!="}
TL_TYPES = {
    "f32": "tl.float32",
    "f16": "tl.float16",
    "bf16": "tl.bfloat16",
    "f64": "tl.float64",
    "i64": "tl.int64",
    "i32": "tl.int32",
    "i16": "tl.int16",
    "i8": "tl.int8",
    "i1": "tl.int1",
    "ui8": "tl.uint8",
    "ui16": "tl.uint16",
    "ui32": "tl.uint32",
    "ui64": "tl.uint64",
}
UNARY = {
    "math.exp": "tl.exp",
    "math.log": "tl.log",
    "math.sqrt": "tl.sqrt",
    "math.erf": "tl.erf",
    "math.sin": "tl.sin",
    "math.cos": "tl.cos",
    "math.floor": "tl.floor",
    "math.ceil": "tl.ceil",
    "math.absf": "tl.abs",
    "math.rsqrt": "tl.rsqrt",
}
CASTS = ("arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.extf", "arith.extsi", "arith.trunci", "tile.cast")
EXPRESSIONS = (
    set(BINARY)
    | set(UNARY)
    | set(CASTS)
    | {
        "arith.cmpi",
        "arith.cmpf",
        "arith.maximumf",
        "arith.minimumf",
        "arith.maxsi",
        "arith.minsi",
        "arith.select",
        "arith.truncf",
        "arith.negf",
        "arith.index_cast",
        "arith.bitcast",
        "tile.program_id",
        "tile.range",
        "tile.symbol",
        "tile.expand_dims",
        "tile.splat",
        "tile.broadcast",
    }
)
LITERAL_TYPES = ("f32", "i32", "i64", "i1", "index")  # literals Triton reads as these (an int literal widens to i64)
PROD_HELPER = "@triton.jit\ndef _mul(a, b):\n    return a * b\n"
BLOCK_NAMES = ("BLOCK", "BLOCK_M", "BLOCK_N", "BLOCK_K", "BLOCK_P", "BLOCK_R", "BLOCK_D")
MAX_INLINE = 72  # characters of an inlined expression


class Expr(NamedTuple):
    text: str
    prec: int


def _loc_name(loc: ir.Location) -> str | None:
    """The variable name a location gives (a NameLoc outermost: `TileBuilder.name`, the
    kernel's argument names), else None. Tile ops are built under a fused location
    (lower-to-tile), so the ONNX node names inside it are never taken for variables."""
    return loc.name_str if loc.is_a_name() else None


def _owner(v: ir.Value) -> ir.Operation | None:
    o = v.owner
    if isinstance(o, ir.Block):
        return None
    return o.operation if hasattr(o, "operation") else o


def _is_numeric(d: str) -> bool:
    return d.isdigit()


def _symbol_names(kernel: ir.Operation) -> set[str]:
    """The symbolic sizes a kernel reads (its `tile.symbol`s): scalar arguments, so no
    variable of the kernel may take their names (a symbol `x_2` beside a tile `x`)."""
    found: set[str] = set()

    def walk(op):
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    if inner.operation.name == "tile.symbol":
                        found.add(ir.StringAttr(inner.operation.attributes["symbol"]).value)
                    walk(inner.operation)

    walk(kernel)
    return found


class _Printer:
    def __init__(self, kernel: ir.Operation):
        self.kernel = kernel
        self.helpers: set[str] = set()
        self.symbols: set[str] = set()  # symbolic sizes the kernel reads (scalar arguments)
        self.constexprs: set[str] = set()  # block sizes it uses
        self.exprs: dict = {}  # value -> Expr of it as printed (an inline expression or a variable)
        self.pshape: dict = {}  # value -> its printed shape: sizes (1 where Triton broadcasts) or None (a scalar)
        self.dims: dict = {}  # value -> names of its dimensions (block names or sizes)
        self.used: set[str] = {"tl", "triton", "range", "float", "int"} | _symbol_names(kernel)
        self.lines: list[str] = []
        self.loop_targets: list[list[str]] = []  # per open scf.for: its loop-carried variables
        self.loop_args: list[list[ir.Value]] = []  # and its region arguments
        self.lined: set = set()  # values printed on a line of their own
        self.materialize = None  # a constant operand written as a whole tile (see `op`)
        self.temps = 0

    # -- names ---------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name

    def unique_pointer(self, name: str) -> str:
        """`name` (`add_b_ptr`), or numbered before its `_ptr` when taken (`add_b1_ptr`)."""
        if not name.endswith("_ptr") or name not in self.used:
            return self.unique(name)
        i = 1
        while f"{name[:-4]}{i}_ptr" in self.used:
            i += 1
        return self.unique(f"{name[:-4]}{i}_ptr")

    def temp(self) -> str:
        while f"t{self.temps}" in self.used:
            self.temps += 1
        return self.unique(f"t{self.temps}")

    def emit(self, depth: int, text: str):
        self.lines.append("    " * depth + text)

    # -- shapes --------------------------------------------------------------------------
    def dims_of(self, v: ir.Value) -> list[str]:
        if v in self.dims:
            return self.dims[v]
        op = _owner(v)
        if op is not None and op.name == "tile.full" and "dims" in op.attributes:
            return [ir.StringAttr(d).value for d in ir.ArrayAttr(op.attributes["dims"])]
        return [str(d) for d in shape(v)]

    def merge_dims(self, values, out: list[int]) -> list[str]:
        names = [str(d) for d in out]
        for v in values:
            if len(shape(v)) != len(out):
                continue
            for i, d in enumerate(self.dims_of(v)):
                if i < len(names) and not _is_numeric(d) and _is_numeric(names[i]) and str(shape(v)[i]) == names[i]:
                    names[i] = d
        return names

    def shape_text(self, v: ir.Value) -> str:
        return "[" + ", ".join(self.dims_of(v)) + "]"

    def is_full(self, v: ir.Value) -> bool:
        p = self.pshape.get(v, shape(v))
        return p is not None and list(p) == shape(v)

    # -- operands ------------------------------------------------------------------------
    def literal(self, v: ir.Value) -> str | None:
        """The Python literal of a constant operand Triton reads with the right type, else None."""
        attr = splat_value(v, ("arith.constant", "tile.full"))
        et = str(elem(v))
        return _literal(attr, et) if attr is not None and et in LITERAL_TYPES else None

    def full(self, v: ir.Value) -> Expr:
        """A constant as a whole tile: tl.zeros / tl.full over its named dimensions."""
        attr = splat_value(v, ("arith.constant", "tile.full"))
        if attr is None:
            raise NotImplementedError(f"lower-to-triton prints splat constants only, not {v}")
        et = str(elem(v))
        value = _literal(attr, et)
        tl_type = TL_TYPES[et]
        if value in ("0", "0.0", "False"):
            return Expr(f"tl.zeros({self.shape_text(v)}, dtype={tl_type})", ATOM)
        return Expr(f"tl.full({self.shape_text(v)}, {value}, {tl_type})", ATOM)

    def arg(self, v: ir.Value, whole: bool = False) -> Expr:
        """`v` as an operand. `whole`: the use needs `v`'s full shape (Triton does not
        broadcast there)."""
        op = _owner(v)
        if op is not None and op.name in ("arith.constant", "tile.full") and v not in self.exprs:
            if not shape(v):
                return Expr(self.literal(v) or self.full(v).text, ATOM)
            if whole or (self.materialize is not None and v == self.materialize):
                return self.full(v)
            lit = self.literal(v)
            return Expr(lit, ATOM) if lit is not None else self.full(v)
        e = self.exprs[v]
        if whole and shape(v) and not self.is_full(v):
            if self.pshape.get(v) is None:  # a scalar (a Python int in the interpreter: a loop counter)
                return Expr(f"tl.full({self.shape_text(v)}, {e.text}, {TL_TYPES[str(elem(v))]})", ATOM)
            return Expr(f"tl.broadcast_to({e.text}, {self.shape_text(v)})", ATOM)
        return e

    def pshape_of(self, v: ir.Value):
        if self.materialize is not None and v == self.materialize:
            return shape(v)
        op = _owner(v)
        if op is not None and op.name in ("arith.constant", "tile.full", "tile.constexpr") and v not in self.exprs:
            return None
        return self.pshape.get(v, shape(v))

    def merged_pshape(self, values, out: list[int]):
        shapes = [self.pshape_of(v) for v in values]
        shapes = [s for s in shapes if s is not None and len(s) == len(out)]
        if not shapes or not out:
            return None
        return [max(s[i] for s in shapes) for i in range(len(out))]

    # -- ops -----------------------------------------------------------------------------
    def block(self, block: ir.Block, depth: int):
        for op in ops(block):
            self.op(op, depth)

    def define(self, op: ir.Operation, expr: Expr, depth: int, line: bool = False, hint: str | None = None):
        """Binds op's result to `expr`: inline when it is an unnamed expression used once
        in the same block, else a line `name = expr`. A value a loop yields is assigned to
        the loop-carried variable (directly, when nothing later reads that variable's old
        value; else by the yield, which assigns them all at once)."""
        v = op.results[0]
        name = _loc_name(op.location)
        uses = list(v.uses)
        yielded = len(uses) == 1 and uses[0].owner.operation.name == "scf.yield" and bool(self.loop_targets)
        if yielded:
            pos = uses[0].operand_number
            if not line:
                self.exprs[v] = expr  # printed by the yield
                return
            carried = self.loop_args[-1][pos]
            if all(self.read_before(u.owner.operation, op) for u in carried.uses):
                target = self.loop_targets[-1][pos]
                self.emit(depth, f"{target} = {expr.text}")
                self.exprs[v] = Expr(target, ATOM)
                self.lined.add(v)
                return
        inline = (
            not line
            and name is None
            and len(uses) == 1
            and len(expr.text) <= MAX_INLINE
            and uses[0].owner.operation.parent == op.parent
            and not yielded
        )
        if inline:
            self.exprs[v] = expr
            return
        var = self.unique(name) if name else (self.unique(hint) if hint else self.temp())
        self.emit(depth, f"{var} = {expr.text}")
        self.exprs[v] = Expr(var, ATOM)
        self.lined.add(v)

    def read_before(self, user: ir.Operation, op: ir.Operation) -> bool:
        """Whether `user`'s reading of a value happens before `op`'s line assigns over it:
        `user` is `op`, has a line of its own already, or is written inline into `op`."""
        while True:
            if user == op or any(r in self.lined for r in user.results):
                return True
            uses = [u for r in user.results for u in r.uses]
            if len(uses) != 1:
                return False
            user = uses[0].owner.operation

    def op(self, op: ir.Operation, depth: int):
        name, a = op.name, op.attributes
        if name in ("func.return", "arith.constant", "tile.full"):  # constants are written at their uses
            return
        if name == "scf.yield":  # one assignment: every value is computed from the old ones
            pairs = [(t, self.arg(v, whole=True).text) for t, v in zip(self.loop_targets[-1], op.operands)]
            pairs = [(t, x) for t, x in pairs if t != x]
            if pairs:
                self.emit(depth, f"{', '.join(t for t, _ in pairs)} = {', '.join(x for _, x in pairs)}")
            return
        if name == "scf.for":
            self.loop(op, depth)
            return
        if name == "tile.store":
            buf, offs, val, mask = op.operands
            self.emit(
                depth,
                f"tl.store({self.exprs[buf].text} + {self.wrap(self.arg(offs, whole=True), 12, True)}, "
                f"{self.arg(val).text}{self.mask_text(mask)})",
            )
            return
        r = op.results[0]
        if name in EXPRESSIONS and not list(r.uses):
            return  # a pure expression nothing reads
        out = shape(r)
        operands = list(op.operands)
        # an op on constants only (tile.full, which canonicalize does not fold) computes a
        # tile: its first operand is written as one, so Python does not compute on literals
        self.materialize = (
            operands[0]
            if out
            and operands
            and name in EXPRESSIONS
            and name not in ("tile.splat", "tile.broadcast")
            and all(
                (o := _owner(v)) is not None and o.name in ("arith.constant", "tile.full") and v not in self.exprs
                for v in operands
            )
            else None
        )
        self.dims[r] = self.merge_dims(operands, out) if operands else [str(d) for d in out]
        self.pshape[r] = self.merged_pshape(operands, out) if operands else (list(out) or None)
        line, hint = False, None
        if name == "tile.constexpr":
            block = ir.StringAttr(a["name"]).value
            self.constexprs.add(block)
            self.exprs[r] = Expr(block, ATOM)
            self.pshape[r] = None
            return
        if name in BINARY:
            sym, prec = BINARY[name]
            expr = Expr(
                f"{self.wrap(self.arg(operands[0]), prec)} {sym} {self.wrap(self.arg(operands[1]), prec, True)}", prec
            )
        elif name in ("arith.cmpi", "arith.cmpf"):
            pred = ir.IntegerAttr(a["predicate"]).value
            sym = (CMP if name == "arith.cmpi" else CMPF)[pred]
            expr = Expr(
                f"{self.wrap(self.arg(operands[0]), CMP_PREC + 1)} {sym} "
                f"{self.wrap(self.arg(operands[1]), CMP_PREC + 1)}",
                CMP_PREC,
            )
        elif name in ("arith.maximumf", "arith.minimumf"):
            fn = "maximum" if name == "arith.maximumf" else "minimum"
            expr = Expr(
                f"tl.{fn}({self.arg(operands[0]).text}, {self.arg(operands[1]).text}, "
                "propagate_nan=tl.PropagateNan.ALL)",
                ATOM,
            )
        elif name in ("arith.maxsi", "arith.minsi"):
            fn = "maximum" if name == "arith.maxsi" else "minimum"
            expr = Expr(f"tl.{fn}({self.arg(operands[0]).text}, {self.arg(operands[1]).text})", ATOM)
        elif name == "arith.select":
            c, x, y = (self.arg(v).text for v in operands)
            expr = Expr(f"tl.where({c}, {x}, {y})", ATOM)
        elif name in UNARY:
            expr = Expr(f"{UNARY[name]}({self.arg(operands[0]).text})", ATOM)
        elif name == "arith.negf":
            expr = Expr(f"-{self.wrap(self.arg(operands[0]), UNARY_PREC)}", UNARY_PREC)
        elif name == "arith.truncf":  # round to nearest even, as ONNX's Cast does
            expr = Expr(
                f'{self.wrap(self.arg(operands[0]), ATOM)}.to({TL_TYPES[str(elem(r))]}, fp_downcast_rounding="rtne")',
                ATOM,
            )
        elif (
            name == "arith.trunci" and str(elem(r)) == "i1"
        ):  # the low bit, as arith truncates (.to(tl.int1) tests != 0)
            expr = Expr(f"({self.wrap(self.arg(operands[0]), 10)} & 1) != 0", CMP_PREC)
        elif name == "arith.bitcast":  # the same bits as another type of their width
            expr = Expr(f"{self.wrap(self.arg(operands[0]), ATOM)}.to({TL_TYPES[str(elem(r))]}, bitcast=True)", ATOM)
        elif name in CASTS:
            expr = Expr(f"{self.wrap(self.arg(operands[0]), ATOM)}.to({TL_TYPES[str(elem(r))]})", ATOM)
        elif name == "arith.index_cast":  # a loop counter: a Python int in the interpreter
            src = self.arg(operands[0])
            expr = Expr(f"tl.cast({src.text}, tl.int64)", ATOM) if _wide(op) else src
            self.pshape[r] = None
        elif name == "tile.symbol":
            sym = ir.StringAttr(a["symbol"]).value
            self.symbols.add(sym)
            expr = Expr(f"tl.cast({sym}, tl.int64)", ATOM) if _wide(op) else Expr(sym, ATOM)
            self.pshape[r] = None
        elif name == "tile.program_id":
            expr = Expr(
                f"tl.program_id({ir.IntegerAttr(a['axis']).value})" + (".to(tl.int64)" if _wide(op) else ""), ATOM
            )
            self.pshape[r] = None
        elif name == "tile.range":
            end = ir.StringAttr(a["block"]).value if "block" in a else str(ir.IntegerAttr(a["end"]).value)
            if "block" in a:
                self.constexprs.add(end)
            self.dims[r] = [end]
            expr = Expr(
                f"tl.arange({ir.IntegerAttr(a['start']).value}, {end})" + (".to(tl.int64)" if _wide(op) else ""), ATOM
            )
        elif name in ("tile.splat", "tile.broadcast"):
            named = [ir.StringAttr(d).value for d in ir.ArrayAttr(a["dims"])] if "dims" in a else [str(d) for d in out]
            src_dims = self.dims_of(operands[0]) if shape(operands[0]) else []
            self.dims[r] = [
                s
                if _is_numeric(d) and i < len(src_dims) and not _is_numeric(s) and shape(operands[0])[i] == out[i]
                else d
                for i, (d, s) in enumerate(zip(named, src_dims + [""] * len(named)))
            ]
            self.pshape[r] = self.pshape_of(operands[0]) if name == "tile.broadcast" else None
            for d in self.dims[r]:
                if not _is_numeric(d):
                    self.constexprs.add(d)
            self.exprs[r] = self.arg(operands[0])  # Triton broadcasts: nothing to print
            return
        elif name == "tile.expand_dims":
            axis = ir.IntegerAttr(a["axis"]).value
            src = self.arg(operands[0], whole=self.pshape_of(operands[0]) is None)
            rank = len(out)
            index = ", ".join("None" if i == axis else ":" for i in range(rank))
            expr = Expr(f"{self.wrap(src, ATOM)}[{index}]", ATOM)
            self.dims[r] = self.dims_of(operands[0])[:axis] + ["1"] + self.dims_of(operands[0])[axis:]
            p = self.pshape_of(operands[0]) or shape(operands[0])
            self.pshape[r] = list(p[:axis]) + [1] + list(p[axis:])
        elif name == "tile.load":
            buf, offs, mask = operands
            other = ir.FloatAttr(a["other"]).value
            if not str(elem(r)).startswith(("f", "bf")):
                other = int(other)
            self.dims[r] = self.dims_of(offs)
            self.pshape[r] = list(out)
            ptr = self.exprs[buf].text
            mask_text = self.mask_text(mask)
            expr = Expr(
                f"tl.load({ptr} + {self.wrap(self.arg(offs, whole=True), 12, True)}{mask_text}"
                + (f", other={_py(other)})" if mask_text else ")"),
                ATOM,
            )
            line, hint = True, (ptr[:-4] if ptr.endswith("_ptr") else "v")
        elif name == "tile.dot":
            x, y, acc = (self.arg(v, whole=True).text for v in operands)
            prec = ir.StringAttr(a["input_precision"]).value
            self.dims[r] = [self.dims_of(operands[0])[0], self.dims_of(operands[1])[1]]
            self.pshape[r] = list(out)
            expr = Expr(f'tl.dot({x}, {y}, {acc}, input_precision="{prec}")', ATOM)
            line = True
        elif name == "tile.scan":
            fn = "cumprod" if ir.StringAttr(a["kind"]).value == "prod" else "cumsum"
            self.pshape[r] = list(out)
            expr = Expr(
                f"tl.{fn}({self.arg(operands[0], whole=True).text}, axis={ir.IntegerAttr(a['axis']).value})", ATOM
            )
            line = True
        elif name == "tile.reduce":
            kind = ir.StringAttr(a["kind"]).value
            axis = ir.IntegerAttr(a["axis"]).value
            text = self.arg(operands[0], whole=True).text
            d = self.dims_of(operands[0])
            self.dims[r] = d[:axis] + d[axis + 1 :]
            self.pshape[r] = list(out) or None
            if kind == "prod":
                self.helpers.add(PROD_HELPER)
                expr = Expr(f"tl.reduce({text}, {axis}, _mul)", ATOM)
            else:
                expr = Expr(f"tl.{kind}({text}, axis={axis})", ATOM)
            line = True
        else:
            raise NotImplementedError(f"lower-to-triton has no printer for {name}")
        self.define(op, expr, depth, line=line or name not in EXPRESSIONS, hint=hint)

    def mask_text(self, mask: ir.Value) -> str:
        """`, mask=...`, or nothing for a mask that is all true."""
        op = _owner(mask)
        if op is not None and op.name in ("arith.constant", "tile.full") and self.literal(mask) == "True":
            return ""
        return f", mask={self.arg(mask).text}"

    def wrap(self, e: Expr, prec: int, right: bool = False) -> str:
        """`e` as an operand of an operator of precedence `prec` (parenthesized as needed)."""
        if e.prec > prec or (e.prec == prec and not right and prec != CMP_PREC):
            return e.text
        return f"({e.text})"

    def loop(self, op: ir.Operation, depth: int):
        body = op.regions[0].blocks[0]
        lb, ub, step = (self.arg(v).text for v in list(op.operands)[:3])
        iv = body.arguments[0]
        iv_name = self.unique(_loc_name(op.location) or "k0")
        self.exprs[iv] = Expr(iv_name, ATOM)
        self.pshape[iv] = None
        targets = []
        for arg, init, res in zip(list(body.arguments)[1:], list(op.operands)[3:], op.results):
            init_op = _owner(init)
            base = (_loc_name(init_op.location) if init_op is not None else None) or "acc"
            t = self.unique(base)
            self.emit(depth, f"{t} = {self.arg(init, whole=True).text}")
            for v in (arg, res):
                self.exprs[v] = Expr(t, ATOM)
                self.dims[v] = self.dims_of(init)
                self.pshape[v] = list(shape(init)) or None
            targets.append(t)
        self.loop_targets.append(targets)
        self.loop_args.append(list(body.arguments)[1:])
        self.emit(depth, f"for {iv_name} in range({lb}, {ub}, {step}):")
        n = len(self.lines)
        self.block(body, depth + 1)
        if len(self.lines) == n:
            self.emit(depth + 1, "pass")
        self.loop_targets.pop()
        self.loop_args.pop()


def _wide(op: ir.Operation) -> bool:
    """Whether an index op's result is i64 (a kernel with 64-bit index arithmetic): Triton's
    program ids, ranges, loop counters and small int arguments are int32, so it is cast."""
    return str(elem(op.results[0])) == "i64"


def _py(v) -> str:
    if isinstance(v, float):
        return f"float('{v}')" if v != v or v in (float("inf"), float("-inf")) else repr(v)
    return str(v)


def _literal(attr: ir.Attribute, et: str = "") -> str:
    if isinstance(attr, ir.FloatAttr):
        return _py(attr.value)
    value = ir.IntegerAttr(attr).value
    if et == "i1":
        return "True" if value else "False"
    return str(value)


def _attr_list(kernel: ir.Operation, name: str) -> list[str]:
    return [ir.StringAttr(x).value for x in ir.ArrayAttr(kernel.attributes[name])] if name in kernel.attributes else []


def _blocks(kernel: ir.Operation) -> dict[str, int]:
    cfg = ir.DictAttr(kernel.attributes["tnx.block"]) if "tnx.block" in kernel.attributes else None
    return {k: ir.IntegerAttr(cfg[k]).value for k in BLOCK_NAMES if cfg is not None and k in cfg}


def _tensor_text(t: ir.Type) -> str:
    """`f32[1, 64, 13, 13]`; a dynamic compile's sizes as their expressions (`f32[batch, 64]`)."""
    rt = ir.RankedTensorType(t)
    dims = ", ".join(symbolic.to_python(d) if symbolic.is_symbolic(d) else str(d) for d in type_shape(rt))
    return f"{rt.element_type}[{dims}]"


def header(kernel: ir.Operation, name: str, params: list[str], n_in: int, n_chk: int) -> list[str]:
    """The comment block above a kernel: what it computes and how it is launched."""
    nodes = _attr_list(kernel, "tnx.nodes")
    types = _attr_list(kernel, "tnx.op_types")
    covered = ", ".join(f"{n} ({t})" for n, t in zip(nodes, types)) if len(types) == len(nodes) else ", ".join(nodes)
    block = kernel.regions[0].blocks[0]
    args = list(zip(params, block.arguments))
    ins = ", ".join(f"{p} {_tensor_text(a.type)}" for p, a in args[:n_in])
    outs = ", ".join(f"{p} {_tensor_text(a.type)}" for p, a in args[n_in + n_chk :])
    grid = (
        (
            _attr_list(kernel, "tnx.grid_sizes")
            if "tnx.grid_sizes" in kernel.attributes
            else [str(g) for g in ir.DenseI64ArrayAttr(kernel.attributes["tnx.grid"])]
        )
        if "tnx.grid" in kernel.attributes
        else []
    )
    blocks = ", ".join(f"{k}={v}" for k, v in _blocks(kernel).items())
    warps = ir.IntegerAttr(kernel.attributes["tnx.num_warps"]).value if "tnx.num_warps" in kernel.attributes else "?"
    stages = ir.IntegerAttr(kernel.attributes["tnx.num_stages"]).value if "tnx.num_stages" in kernel.attributes else "?"
    kind = ir.StringAttr(kernel.attributes["tnx.kind"]).value
    lines = [
        f"# {name}: generated by tritonnx lower-to-triton; do not edit.",
        f"# ONNX nodes (first call site): {covered}",
        f"# kind: {kind}; inputs: {ins}",
        f"# outputs: {outs}",
        f"# grid: ({', '.join(grid)}); {blocks}; num_warps={warps}, num_stages={stages}",
    ]
    if "tnx.gemm_view" in kernel.attributes:
        lines.append(f"# {ir.StringAttr(kernel.attributes['tnx.gemm_view']).value}")
    if "tnx.method" in kernel.attributes:  # how it computes, where the kind does not say (scatter)
        lines.append(f"# {ir.StringAttr(kernel.attributes['tnx.method']).value}")
    return lines


def print_kernel(kernel: ir.Operation, name: str) -> str:
    """The Triton source of one tile-level kernel, as function `name`: buffers named by
    their arguments' locations (`x_ptr`), then sizes of dynamic dimensions, then the block
    sizes as `tl.constexpr`. Raises NotImplementedError for an op it has no printer for
    (an internal error: lower-to-tile made it)."""
    p = _Printer(kernel)
    block = kernel.regions[0].blocks[0]
    n_out = ir.IntegerAttr(kernel.attributes["tnx.num_outputs"]).value if "tnx.num_outputs" in kernel.attributes else 1
    n_chk = len(ir.ArrayAttr(kernel.attributes["tnx.checks"])) if "tnx.checks" in kernel.attributes else 0
    n_in = len(block.arguments) - n_out - n_chk  # inputs, check buffers (index checks), outputs
    params = []
    for i, arg in enumerate(block.arguments):
        named = _loc_name(arg.location)
        default = (
            f"in{i}_ptr"
            if i < n_in
            else f"check{i - n_in}_ptr"
            if i < n_in + n_chk
            else ("y_ptr" if n_out == 1 else f"y{i - n_in - n_chk}_ptr")
        )
        params.append(p.unique_pointer(named or default))
        p.exprs[arg] = Expr(params[-1], ATOM)
    for b in BLOCK_NAMES:  # reserved for the constexpr parameters
        p.used.add(b)
    p.block(block, 1)
    buffers = list(params)
    if p.symbols:  # sizes of dynamic dimensions, after the buffers
        params += sorted(p.symbols)
        kernel.attributes["tnx.symbol_args"] = ir.ArrayAttr.get([ir.StringAttr.get(s) for s in sorted(p.symbols)])
    blocks = [b for b in _blocks(kernel) if b in p.constexprs]
    if blocks:
        kernel.attributes["tnx.constexprs"] = ir.ArrayAttr.get([ir.StringAttr.get(b) for b in blocks])
    elif "tnx.constexprs" in kernel.attributes:
        del kernel.attributes["tnx.constexprs"]
    params += [f"{b}: tl.constexpr" for b in blocks]
    text = header(kernel, name, buffers, n_in, n_chk) + ["import triton", "import triton.language as tl", "", ""]
    for helper in sorted(p.helpers):
        text += [helper, ""]
    signature = f"def {name}({', '.join(params)}):"
    if len(signature) > 100:
        signature = f"def {name}(\n" + "".join(f"    {q},\n" for q in params) + "):"
    text += ["@triton.jit", signature]
    return "\n".join(text + p.lines) + "\n"


def _configs_text(configs: list[dict]) -> str:
    """The autotune candidates as `triton.Config`s of the kernel (the runtime times them on a GPU)."""
    rows = [
        f"    triton.Config({c['block']!r}, num_warps={c['num_warps']}, num_stages={c['num_stages']})," for c in configs
    ]
    return (
        "\n\n# The tiling above and its autotune candidates (the runtime times them on a GPU;\n"
        "# plan.json gives each one's grid).\nCONFIGS = [\n" + "\n".join(rows) + "\n]\n"
    )


def _config_of(kernel: ir.Operation) -> dict:
    return {
        "block": _blocks(kernel),
        "num_warps": ir.IntegerAttr(kernel.attributes["tnx.num_warps"]).value,
        "num_stages": ir.IntegerAttr(kernel.attributes["tnx.num_stages"]).value,
        "grid": _attr_list(kernel, "tnx.grid_sizes")
        if "tnx.grid_sizes" in kernel.attributes
        else list(ir.DenseI64ArrayAttr(kernel.attributes["tnx.grid"])),
    }


def run(module: ir.Operation, pass_=None) -> None:
    table: dict[str, str] = {}
    clones: dict[str, list[ir.Operation]] = {}
    for fn in functions(module):
        if "tnx.candidate_of" in fn.attributes:
            clones.setdefault(ir.StringAttr(fn.attributes["tnx.candidate_of"]).value, []).append(fn)
    for fn in functions(module):
        if "tnx.kind" not in fn.attributes or "tnx.candidate_of" in fn.attributes:
            continue
        sym = ir.StringAttr(fn.attributes["sym_name"]).value
        text = print_kernel(fn, sym)
        configs, dropped = [], 0
        body = text.split("@triton.jit", 1)[1]
        for clone in clones.get(sym, []):
            # a candidate is a config of this kernel only if it prints to the same code
            if print_kernel(clone, sym).split("@triton.jit", 1)[1] == body:
                configs.append(_config_of(clone))
            else:
                dropped += 1
        if configs:
            fn.attributes["tnx.configs"] = ir.ArrayAttr.get(
                [
                    ir.DictAttr.get(
                        {
                            "block": ir.DictAttr.get(
                                {
                                    k: ir.IntegerAttr.get(ir.IntegerType.get_signless(64), v)
                                    for k, v in c["block"].items()
                                }
                            ),
                            "num_warps": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), c["num_warps"]),
                            "num_stages": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), c["num_stages"]),
                            "grid": ir.ArrayAttr.get([ir.StringAttr.get(str(g)) for g in c["grid"]]),
                        }
                    )
                    for c in configs
                ]
            )
            text += _configs_text([_config_of(fn)] + configs)
        if dropped:
            fn.attributes["tnx.dropped_configs"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), dropped)
        table[sym] = text
        fn.attributes["tnx.source"] = ir.StringAttr.get(f"kernels/{sym}.py")
    for group in clones.values():
        for clone in group:
            clone.erase()
    current_session().sources = table
