"""lower-to-triton: prints each tile-level kernel as an `@triton.jit` Python function.

A 1:1 printer: every tile/arith/math/scf op becomes one line of Triton; it makes no
decisions. The pass leaves `{kernel symbol: source}` in the current session's `sources` and tags the kernel with `tnx.source` (its file name) so the dump
shows where each kernel went.
"""
from __future__ import annotations

import hashlib

from mlir import ir

from tritonnx.dialects.tile import elem, shape
from tritonnx.passes import current_session, functions, ops

NAME = "lower-to-triton"

BINARY = {"arith.addi": "+", "arith.addf": "+", "arith.subi": "-", "arith.subf": "-",
          "arith.muli": "*", "arith.mulf": "*", "arith.divf": "/", "arith.divsi": "//",
          "arith.remsi": "%", "arith.andi": "&", "arith.ori": "|", "arith.xori": "^",
          "arith.shli": "<<", "arith.shrsi": ">>"}
CMP = {0: "==", 1: "!=", 2: "<", 3: "<=", 4: ">", 5: ">="}
CMPF = {1: "==", 2: ">", 3: ">=", 4: "<", 5: "<=", 13: "!="}
TL_TYPES = {"f32": "tl.float32", "f16": "tl.float16", "bf16": "tl.bfloat16", "f64": "tl.float64",
            "i64": "tl.int64", "i32": "tl.int32", "i16": "tl.int16", "i8": "tl.int8", "i1": "tl.int1",
            "ui8": "tl.uint8", "ui16": "tl.uint16", "ui32": "tl.uint32", "ui64": "tl.uint64"}
UNARY = {"math.exp": "tl.exp({})", "math.log": "tl.log({})", "math.sqrt": "tl.sqrt({})",
         "math.erf": "tl.erf({})", "math.sin": "tl.sin({})", "math.cos": "tl.cos({})",
         "math.floor": "tl.floor({})", "math.ceil": "tl.ceil({})", "math.absf": "tl.abs({})",
         "math.rsqrt": "tl.rsqrt({})", "arith.negf": "-{}"}
PROD_HELPER = "@triton.jit\ndef _tnx_mul(a, b):\n    return a * b\n"


class _Printer:
    def __init__(self):
        self.helpers: set[str] = set()
        self.symbols: set[str] = set()  # symbolic sizes the kernel reads (scalar arguments)
        self.loop_targets: list[list[str]] = []  # per open scf.for: the names its yield assigns
        self.names: dict = {}
        self.lines: list[str] = []
        self.count = 0

    def name(self, v: ir.Value) -> str:
        return self.names[v]

    def fresh(self, v: ir.Value, hint: str = "v") -> str:
        n = f"{hint}{self.count}"
        self.count += 1
        self.names[v] = n
        return n

    def emit(self, depth: int, text: str):
        self.lines.append("    " * depth + text)

    def block(self, block: ir.Block, depth: int):
        for op in ops(block):
            self.op(op, depth)

    def op(self, op: ir.Operation, depth: int):
        name, a = op.name, op.attributes
        args = [self.name(v) for v in op.operands]
        if name in ("func.return",):
            return
        if name == "scf.yield":
            for target, v in zip(self.loop_targets[-1], args):
                self.emit(depth, f"{target} = {v}")
            return
        if name == "scf.for":
            body = op.regions[0].blocks[0]
            iv = self.fresh(body.arguments[0], "k")
            targets = []
            for arg, init, res in zip(list(body.arguments)[1:], args[3:], op.results):
                t = self.fresh(arg, "acc")
                self.names[res] = t
                targets.append(t)
                self.emit(depth, f"{t} = {init}")
            self.loop_targets.append(targets)
            self.emit(depth, f"for {iv} in range({args[0]}, {args[1]}, {args[2]}):")
            self.block(body, depth + 1)
            self.loop_targets.pop()
            return
        out = self.fresh(op.results[0]) if len(op.results) else None
        if name == "arith.constant":
            attr = a["value"]
            if isinstance(attr, ir.DenseElementsAttr):
                value = _literal(attr.get_splat_value())
                text = f"tl.full({list(shape(op.results[0]))}, {value}, {TL_TYPES[str(elem(op.results[0]))]})"
            else:
                text = _literal(attr)
        elif name in BINARY:
            text = f"{args[0]} {BINARY[name]} {args[1]}"
        elif name in ("arith.cmpi", "arith.cmpf"):
            pred = ir.IntegerAttr(a["predicate"]).value
            text = f"{args[0]} {(CMP if name == 'arith.cmpi' else CMPF)[pred]} {args[1]}"
        elif name in ("arith.maximumf", "arith.minimumf"):
            fn = "maximum" if name == "arith.maximumf" else "minimum"
            text = f"tl.{fn}({args[0]}, {args[1]}, propagate_nan=tl.PropagateNan.ALL)"
        elif name in ("arith.maxsi", "arith.minsi"):
            text = f"tl.{'maximum' if name == 'arith.maxsi' else 'minimum'}({args[0]}, {args[1]})"
        elif name == "arith.select":
            text = f"tl.where({args[0]}, {args[1]}, {args[2]})"
        elif name in UNARY:
            text = UNARY[name].format(args[0])
        elif name == "arith.truncf":  # round to nearest even, as ONNX's Cast does
            text = f"{args[0]}.to({TL_TYPES[str(elem(op.results[0]))]}, fp_downcast_rounding=\"rtne\")"
        elif name in ("arith.sitofp", "arith.uitofp", "arith.fptosi", "arith.extf",
                      "arith.extsi", "arith.trunci", "tile.cast"):
            text = f"{args[0]}.to({TL_TYPES[str(elem(op.results[0]))]})"
        elif name == "arith.index_cast":  # a loop counter: a Python int in the interpreter
            text = f"tl.cast({args[0]}, tl.int64)" if _wide(op) else args[0]
        elif name == "tile.symbol":
            sym = ir.StringAttr(a["symbol"]).value
            self.symbols.add(sym)
            text = f"tl.cast({sym}, tl.int64)" if _wide(op) else sym
        elif name == "tile.program_id":
            text = f"tl.program_id({ir.IntegerAttr(a['axis']).value})" + (".to(tl.int64)" if _wide(op) else "")
        elif name == "tile.range":
            text = (f"tl.arange({ir.IntegerAttr(a['start']).value}, {ir.IntegerAttr(a['end']).value})"
                    + (".to(tl.int64)" if _wide(op) else ""))
        elif name == "tile.splat":
            et = TL_TYPES[str(elem(op.results[0]))]
            text = f"tl.full({shape(op.results[0])}, 0, {et}) + {args[0]}"
        elif name == "tile.expand_dims":
            text = f"tl.expand_dims({args[0]}, {ir.IntegerAttr(a['axis']).value})"
        elif name == "tile.broadcast":
            text = f"tl.broadcast_to({args[0]}, {shape(op.results[0])})"
        elif name == "tile.load":
            other = ir.FloatAttr(a["other"]).value
            if not str(elem(op.results[0])).startswith(("f", "bf")):
                other = int(other)
            text = f"tl.load({args[0]} + {args[1]}, mask={args[2]}, other={other})"
        elif name == "tile.store":
            self.emit(depth, f"tl.store({args[0]} + {args[1]}, {args[2]}, mask={args[3]})")
            return
        elif name == "tile.dot":
            prec = ir.StringAttr(a["input_precision"]).value
            text = f"tl.dot({args[0]}, {args[1]}, {args[2]}, input_precision=\"{prec}\")"
        elif name == "tile.scan":
            fn = "cumprod" if ir.StringAttr(a["kind"]).value == "prod" else "cumsum"
            text = f"tl.{fn}({args[0]}, axis={ir.IntegerAttr(a['axis']).value})"
        elif name == "tile.reduce":
            kind = ir.StringAttr(a["kind"]).value
            axis = ir.IntegerAttr(a["axis"]).value
            if kind == "prod":
                self.helpers.add(PROD_HELPER)
                text = f"tl.reduce({args[0]}, {axis}, _tnx_mul)"
            else:
                text = f"tl.{kind}({args[0]}, axis={axis})"
        else:
            raise NotImplementedError(f"lower-to-triton has no printer for {name}")
        self.emit(depth, f"{out} = {text}")


def _wide(op: ir.Operation) -> bool:
    """Whether an index op's result is i64 (a kernel with 64-bit index arithmetic): Triton's
    program ids, ranges, loop counters and small int arguments are int32, so it is cast."""
    return str(elem(op.results[0])) == "i64"


def _literal(attr: ir.Attribute) -> str:
    if isinstance(attr, ir.FloatAttr):
        v = attr.value
        return f"float('{v}')" if v != v or v in (float("inf"), float("-inf")) else repr(v)
    return str(ir.IntegerAttr(attr).value)


def print_kernel(kernel: ir.Operation, name: str) -> str:
    """The Triton source of one tile-level kernel, as function `name`."""
    p = _Printer()
    block = kernel.regions[0].blocks[0]
    n_out = ir.IntegerAttr(kernel.attributes["tnx.num_outputs"]).value if "tnx.num_outputs" in kernel.attributes else 1
    n_chk = len(ir.ArrayAttr(kernel.attributes["tnx.checks"])) if "tnx.checks" in kernel.attributes else 0
    n_in = len(block.arguments) - n_out - n_chk  # inputs, check buffers (index checks), outputs
    params = [p.fresh(arg, f"in{i}_") if i < n_in else p.fresh(arg, f"check{i - n_in}_") if i < n_in + n_chk
              else p.fresh(arg, "out" if n_out == 1 else f"out{i - n_in - n_chk}_")
              for i, arg in enumerate(block.arguments)]
    p.block(block, 1)
    if p.symbols:  # sizes of dynamic dimensions, after the buffers
        params += sorted(p.symbols)
        kernel.attributes["tnx.symbol_args"] = ir.ArrayAttr.get([ir.StringAttr.get(s) for s in sorted(p.symbols)])
    nodes = ", ".join(ir.StringAttr(x).value for x in ir.ArrayAttr(kernel.attributes["tnx.nodes"]))
    header = ["# Generated by tritonnx lower-to-triton. Do not edit.",
              f"# ONNX nodes (first call site): {nodes}",
              "import triton", "import triton.language as tl", "", ""]
    for helper in sorted(p.helpers):
        header += [helper, ""]
    header += ["@triton.jit", f"def {name}({', '.join(params)}):"]
    return "\n".join(header + p.lines) + "\n"


def source_name(text: str) -> str:
    """A content-addressed kernel name: identical kernels share one file."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("# ONNX nodes"))
    return "k_" + hashlib.sha256(body.encode()).hexdigest()[:12]


def run(module: ir.Operation, pass_=None) -> None:
    table: dict[str, str] = {}
    for fn in functions(module):
        if "tnx.kind" not in fn.attributes:
            continue
        sym = ir.StringAttr(fn.attributes["sym_name"]).value
        text = print_kernel(fn, "KERNEL")
        name = source_name(text)
        table[sym] = text.replace("def KERNEL(", f"def {name}(")
        fn.attributes["tnx.source"] = ir.StringAttr.get(f"kernels/{name}.py")
    current_session().sources = table
