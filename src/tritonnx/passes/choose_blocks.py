"""choose-blocks: chooses block sizes, grid, num_warps and num_stages for every kernel and records
them as attributes (`tnx.block`, `tnx.grid`, `tnx.num_warps`, `tnx.num_stages`), the
figures the cost model needs (`tnx.cost`: FLOPs and the role of each kernel input) and,
for dot kernels tiled for a GPU, a few autotune candidates (`tnx.candidates`): other block
sizes, warps and stages that lower-to-tile lowers too; lower-to-triton keeps those that
print to the kernel's own source as its `triton.Config`s, which the runtime times on a GPU.

Two tables: `gpu` (tensor-core friendly blocks, multiples of 16, sized so the grid fills
the SMs of the GPU tiled for: the first of the compile's targets, `options.gpu`, a
`tritonnx.target.GPUTarget`; with several targets the kernels are tiled for the first one
only and the cubins of the others run those blocks) and `interpreter` (Triton's CPU interpreter pays per op, not per element, so it
runs fastest with large blocks). Block names by kind:
  conv, gemm, mat_mul: BLOCK_M, BLOCK_N, BLOCK_K over the implicit GEMM [M, K] x [K, N]
  pool:                BLOCK_P outputs x BLOCK_R window positions
  softmax:             BLOCK_P rows x BLOCK_R (the whole axis, or a chunk of a longer or dynamic one)
  top_k:               BLOCK_P rows x BLOCK_R (the whole axis)
  recurrence:          BLOCK_M batch rows x BLOCK_N (the whole hidden size); grid (batch blocks, directions)
  attention:           BLOCK_M queries x BLOCK_N keys per step, BLOCK_D the head dimension
  pointwise:           BLOCK elements
"""

from __future__ import annotations

import math

from mlir import ir

from tritonnx.dialects.builders import attrs_of, shape_of, to_attr, type_shape
from tritonnx.dialects.ops import ONNX_NAME, POINTWISE
from tritonnx.errors import CompileError
from tritonnx.passes import current_session, functions, ops
from tritonnx.passes.kernel_info import anchor_of, attention_ops, gemm_dims, node_name
from tritonnx.symbolic import add_guards, collect_guards, guard, hint, is_symbolic, to_python
from tritonnx.target import GPUTarget

NAME = "choose-blocks"
ONE_BLOCK_AXIS = 16384  # a static softmax axis up to this long is held in one block
CHUNK_GPU, CHUNK_INTERPRETER = 4096, 16384  # a longer or dynamic one loops in chunks of this many
MAX_TOP_K_AXIS = 16384  # TopK holds its row in one block
MAX_RECURRENT_HIDDEN = 256  # a recurrence holds h (and c) and one gate's R^T tile [H, H] on chip
DYNAMIC_AXIS = 1024  # the least block of a dynamic row: TopK's one block (a run-time guard), softmax's chunk


def onnx_name(op: ir.Operation) -> str:
    return ONNX_NAME.get(op.name, op.name)


def pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def choose(
    kind: str, anchor: ir.Operation, out_shape: list[int], gpu: GPUTarget | None, precision: str = "fp32"
) -> dict:
    """{"block", "grid", "num_warps", "num_stages"} of a kernel of `kind` (see the module
    docstring) anchored at `anchor` (None for pointwise) with output shape `out_shape`, for
    `gpu` (None: Triton's CPU interpreter) at `precision`. Raises CompileError for a
    TopK axis longer than MAX_TOP_K_AXIS."""
    sms = gpu.sms if gpu is not None else 0  # a GPU grid should give each SM a program
    if kind in ("conv", "conv_transpose", "gemm", "mat_mul"):
        m, n, k, groups = gemm_dims(kind, anchor)
        hm, hn, hk, hg = hint(m), hint(n), hint(k), hint(groups)  # sizes the blocks are chosen for
        if gpu:
            # the largest tensor-core friendly tile that still gives every SM a program
            bn = min(128, max(16, pow2(hn)))
            bm = next((bm for bm in (128, 64) if cdiv(hm, bm) * cdiv(hn, bn) * hg >= sms), 64)
            if cdiv(hm, bm) * cdiv(hn, bn) * hg < sms:
                bm = max(16, min(bm, pow2(hm)))
                while bn > 32 and cdiv(hm, bm) * cdiv(hn, bn) * hg < sms:
                    bn //= 2
            # fp32 IEEE dots run on FMA units, fully unrolled per thread: BLOCK_K 16, 8 warps
            # and 2 pipeline stages keep that code (and its compile time) small; tensor-core
            # dots take BLOCK_K 32 and 3 stages
            bk = 16 if precision == "fp32" else (32 if hk >= 32 else 16)
            block = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)
            warps, stages = dot_warps(bm, bn, precision), (3 if precision != "fp32" else 2)
        else:
            block = dict(
                BLOCK_M=min(2048, max(16, pow2(hm))),
                BLOCK_N=min(256, max(16, pow2(hn))),
                BLOCK_K=min(256, max(16, pow2(hk))),
            )
            warps, stages = 4, 1
        grid = [cdiv(m, block["BLOCK_M"]), cdiv(n, block["BLOCK_N"]), groups]
    elif kind == "recurrence":  # LSTM, GRU, RNN: all time steps in one program per batch block and direction
        _, directions, batch, hidden = shape_of(anchor.results[0])
        if hidden > MAX_RECURRENT_HIDDEN:
            raise CompileError(
                f"{onnx_name(anchor)} node '{node_name(anchor)}' of hidden_size {hidden} is not supported yet "
                f"in one recurrence kernel (at most {MAX_RECURRENT_HIDDEN}: it keeps its state and R on chip); "
                "wider layers run a kernel per time step, which needs static sizes: compile with `shapes=` "
                "(CLI --shape)."
            )
        bn = max(16, pow2(hidden))  # tl.dot needs M, N, K >= 16 on the GPU: padded, masked
        bm = max(16, min(pow2(hint(batch)), 32 if gpu else 256))
        block = dict(BLOCK_M=bm, BLOCK_N=bn)
        grid, warps, stages = [cdiv(batch, bm), directions], (8 if bn >= 128 else 4), 1
    elif kind == "attention":  # grid: blocks of queries x (batch, heads)
        m1, m2 = attention_ops(anchor)
        scores = shape_of(anchor.results[0])
        sq, sk = scores[-2], scores[-1]
        d = max(shape_of(m1.operands[0])[-1], shape_of(m2.results[0])[-1])
        bd = max(16, pow2(d))
        if gpu:
            bm, bn = (128 if hint(sq) >= 128 else 64), (64 if bd <= 64 else 32)
        else:
            bm, bn = min(256, max(16, pow2(hint(sq)))), min(256, max(16, pow2(hint(sk))))
        block = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd)
        grid, warps, stages = [cdiv(sq, bm), math.prod(scores[:-2])], (4 if bm <= 64 else 8), (2 if gpu else 1)
    elif kind == "pool":
        x = shape_of(anchor.operands[0])
        window = (
            math.prod(x[2:]) if anchor.name.startswith("tnx.global") else math.prod(attrs_of(anchor)["kernel_shape"])
        )
        window = max(hint(window), 1)
        p = math.prod(out_shape)
        br = min(pow2(window), 64 if gpu else 256)
        # GPU: at most 2048 lanes (16 a thread): a wide window (a global pool's 7x7 = 49 taps
        # in 64 lanes) takes fewer outputs a program, which also gives more programs to SMs
        bp = (min(128, 2048 // br) if gpu else 4096 * 16 // br) if hint(p) > 1 else 1
        bp = min(bp, pow2(hint(p)))
        block = dict(BLOCK_P=bp, BLOCK_R=br)
        grid, warps, stages = [cdiv(p, bp)], 4, 1
    elif kind in ("reduce", "norm"):
        x = shape_of(anchor.operands[0])
        axes = attrs_of(anchor)["axes"]
        r = math.prod(x[a] for a in axes)
        p = math.prod(n for d, n in enumerate(x) if d not in axes)
        br = min(pow2(hint(r)), 64 if gpu else 1024)
        bp = min(pow2(hint(p)), 128 if gpu else max(1, 65536 // br))
        block = dict(BLOCK_P=bp, BLOCK_R=br)
        grid, warps, stages = [cdiv(p, bp)], 4, 1
    elif kind == "top_k":  # the row is held whole in one block: K rounds over it
        axis = attrs_of(anchor)["axis"]
        n = shape_of(anchor.operands[0])[axis]
        if n > MAX_TOP_K_AXIS:
            raise CompileError(
                f"TopK node '{node_name(anchor)}' over an axis of {n} elements is not supported yet "
                f"(at most {MAX_TOP_K_AXIS}: TopK holds its row in one block)."
            )
        rows = math.prod(shape_of(anchor.operands[0])) // max(n, 1)
        br = pow2(n)
        if is_symbolic(n):  # one block spans the axis: sized for the longest the plan accepts
            br = max(pow2(hint(n)), DYNAMIC_AXIS)
            guard(
                f"{to_python(n)} <= {br}",
                f"TopK over a dynamic axis runs in one block of {br}; compile for these shapes with `shapes=` (CLI --shape)",
            )
        bp = min(pow2(hint(rows)), max(1, (1 if gpu else 65536) // br))
        block = dict(BLOCK_P=bp, BLOCK_R=br)
        grid, warps, stages = [cdiv(rows, bp)], (4 if br <= 2048 else 8), 1
    elif kind == "softmax":
        # a static axis of at most ONE_BLOCK_AXIS is held whole (read once); a longer or a
        # dynamic one loops over it in chunks of BLOCK_R (lower-to-tile's `fits_one_block`)
        axis = attrs_of(anchor)["axis"]
        n = shape_of(anchor.operands[0])[axis]
        rows = math.prod(shape_of(anchor.operands[0])) // max(n, 1)
        chunk = CHUNK_GPU if gpu else CHUNK_INTERPRETER
        if is_symbolic(n):
            br = min(chunk, max(pow2(hint(n)), DYNAMIC_AXIS))
        elif n > ONE_BLOCK_AXIS:
            br = chunk
        else:
            br = pow2(n)
        bp = min(pow2(hint(rows)), max(1, (1 if gpu else 65536) // br))
        block = dict(BLOCK_P=bp, BLOCK_R=br)
        grid, warps, stages = [cdiv(rows, bp)], (4 if br <= 2048 else 8), 1
    else:
        numel = math.prod(out_shape)
        b = min(pow2(hint(numel)), 1024 if gpu else 65536)
        block = dict(BLOCK=b)
        grid, warps, stages = [cdiv(numel, b)], 4, 1
    return dict(block=block, grid=grid, num_warps=warps, num_stages=stages)


MAX_CANDIDATES = 3


def dot_warps(bm: int, bn: int, precision: str) -> int:
    """num_warps of a dot kernel: an FMA (fp32) dot unrolls BLOCK_M * BLOCK_N * BLOCK_K / threads
    multiply-adds per thread and step, so it takes 8 warps from 64x32 blocks on (measured on
    ResNet-50: 8 warps and BLOCK_K 16 compile in 0.6x the time of 4 warps and BLOCK_K 32);
    tensor-core dots take 8 from 128x128."""
    if precision == "fp32":
        return 8 if bm * bn >= 64 * 32 else 4
    return 8 if bm * bn >= 128 * 128 else 4


def candidates(kind: str, anchor: ir.Operation, chosen: dict, precision: str = "fp32") -> list[dict]:
    """Up to MAX_CANDIDATES other GPU tilings of a dot kernel, for the runtime to try on a
    GPU (`CompiledModel.autotune`): the chosen blocks with BLOCK_M or BLOCK_N doubled or
    halved (multiples of 16, at most 128 and the problem's extent), then the other pipeline
    depth."""
    m, n, k, groups = gemm_dims(kind, anchor)
    block = chosen["block"]
    bm, bn, bk = block["BLOCK_M"], block["BLOCK_N"], block["BLOCK_K"]
    top_m, top_n = min(128, max(16, pow2(hint(m)))), min(128, max(16, pow2(hint(n))))
    stages = chosen["num_stages"]
    shapes = [(bm * 2, bn), (bm, bn * 2), (bm // 2, bn), (bm, bn // 2), (bm * 2, bn // 2), (bm // 2, bn * 2)]
    configs = [(m2, n2, stages) for m2, n2 in shapes if 16 <= m2 <= top_m and 16 <= n2 <= top_n]
    configs.append((bm, bn, 3 if stages == 2 else 2))
    out = []
    for m2, n2, s2 in configs:
        cfg = dict(
            block=dict(BLOCK_M=m2, BLOCK_N=n2, BLOCK_K=bk),
            grid=[cdiv(m, m2), cdiv(n, n2), groups],
            num_warps=dot_warps(m2, n2, precision),
            num_stages=s2,
        )
        if cfg not in out:
            out.append(cfg)
    return out[:MAX_CANDIDATES]


def config_attrs(cfg: dict) -> dict[str, ir.Attribute]:
    """A tiling configuration as the kernel attributes the later passes read."""
    attrs = {
        "tnx.block": ir.DictAttr.get({k: to_attr(v) for k, v in cfg["block"].items()}),
        "tnx.grid": to_attr(cfg["grid"]),
        "tnx.num_warps": to_attr(cfg["num_warps"]),
        "tnx.num_stages": to_attr(cfg["num_stages"]),
    }
    if any(is_symbolic(g) for g in cfg["grid"]):  # a dynamic size: the grid as the plan computes it
        attrs["tnx.grid_sizes"] = ir.ArrayAttr.get([ir.StringAttr.get(to_python(g)) for g in cfg["grid"]])
    return attrs


ANCHOR_FLOPS_PER_INPUT = {"pool": 1, "reduce": 1, "softmax": 5, "norm": 6, "top_k": 2}


def _slice_args(value: ir.Value, args: set) -> set:
    """The kernel arguments `value` is computed from (its backward slice, cut at arguments)."""
    found, stack, seen = set(), [value], set()
    while stack:
        v = stack.pop()
        if v in args:
            found.add(v)
            continue
        op = v.owner
        if not isinstance(op, ir.OpView) and not isinstance(op, ir.Operation):
            continue
        op = op.operation
        if op in seen:
            continue
        seen.add(op)
        stack.extend(op.operands)
    return found


def cost_attrs(kernel: ir.Operation, kind: str, anchor: ir.Operation | None, out_shape: list[int]) -> dict:
    """FLOPs of one launch of `kernel` and the role of each input in its memory traffic.

    FLOPs: 2*M*N*K per group for a dot anchor, a few per input element for other anchors
    (ANCHOR_FLOPS_PER_INPUT), plus one per element every elementwise op computes.
    Roles, one per kernel input: "a" (the dot's or reduction's data operand, tiles of it are
    re-read by every column of output blocks), "b" (the dot's weights, re-read by every row of
    output blocks), "e" (read only by elementwise ops at the output's own index, so the
    output may overwrite it in place), "" (anything else, read once).
    """
    block = kernel.regions[0].blocks[0]
    body = ops(block)
    args = list(block.arguments)
    # one FLOP per element an elementwise op computes (an output's window, a prologue's input)
    flops = sum(math.prod(shape_of(op.results[0])) for op in body if op.name in POINTWISE)
    a_args = b_args = set()
    if anchor is not None:
        in_elems = math.prod(shape_of(anchor.operands[0]))
        if kind in ("conv", "conv_transpose", "gemm", "mat_mul"):
            m, n, k, groups = gemm_dims(kind, anchor)
            flops += 2 * m * n * k * groups
            b_args = _slice_args(anchor.operands[1], set(args))
        elif kind == "attention":  # Q K^T and P V, plus ~5 per score for the online softmax
            m1, m2 = attention_ops(anchor)
            flops += 2 * in_elems * (shape_of(m1.operands[0])[-1] + shape_of(m2.results[0])[-1]) + 5 * in_elems
            b_args = _slice_args(m1.operands[1], set(args)) | _slice_args(m2.operands[1], set(args))
            a_args = _slice_args(m1.operands[0], set(args))
        elif kind == "recurrence":  # h·R^T at every step: 2*H multiply-adds per projected element
            flops += 2 * in_elems * shape_of(anchor.operands[1])[2] + 10 * in_elems
            b_args = _slice_args(anchor.operands[1], set(args))
        else:
            flops += ANCHOR_FLOPS_PER_INPUT.get(kind, 1) * in_elems
        if kind != "attention":
            a_args = _slice_args(anchor.operands[0], set(args))
    roles = []
    for arg in args:
        if arg in a_args:
            roles.append("a")
        elif arg in b_args:
            roles.append("b")
        elif shape_of(arg) == out_shape and all(
            u.owner.operation.name in POINTWISE and shape_of(u.owner.operation.results[0]) == out_shape
            for u in arg.uses
        ):
            roles.append("e")
        else:
            roles.append("")
    return {"flops": flops, "roles": roles}


def run(module: ir.Operation, pass_=None) -> None:
    with collect_guards() as guards:
        _run(module, current_session().options.gpu)
    if guards:  # conditions on dynamic sizes the plan relies on, checked by the runtime
        add_guards(module, guards)


def _figure(n) -> ir.Attribute:
    """A cost figure as an attribute: an integer, or a dynamic one's expression (`to_python`)."""
    return ir.StringAttr.get(to_python(n)) if is_symbolic(n) else to_attr(int(n))


def _run(module: ir.Operation, gpu: GPUTarget | None) -> None:
    for fn in functions(module):
        if "tnx.kind" not in fn.attributes:
            continue
        kind = ir.StringAttr(fn.attributes["tnx.kind"]).value
        out_shape = type_shape(ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value).results[0])
        anchor = anchor_of(fn)
        precision = (
            ir.StringAttr(module.attributes["tnx.precision"]).value if "tnx.precision" in module.attributes else "fp32"
        )
        cfg = choose(kind, anchor, out_shape, gpu, precision)
        cost = cost_attrs(fn, kind, anchor, out_shape)
        fn.attributes["tnx.cost"] = ir.DictAttr.get(
            {"flops": _figure(cost["flops"]), "roles": ir.ArrayAttr.get([ir.StringAttr.get(r) for r in cost["roles"]])}
        )
        if math.prod(out_shape) == 0:
            cfg["grid"] = [0] * len(cfg["grid"])  # an empty output: the runtime skips the launch
        for name, attr in config_attrs(cfg).items():
            fn.attributes[name] = attr
        fn.attributes["tnx.target"] = to_attr("interpreter" if gpu is None else "gpu")
        if (
            gpu is not None
            and kind in ("conv", "conv_transpose", "gemm", "mat_mul")
            and any(int(d) == 0 for d in out_shape) is False
        ):
            fn.attributes["tnx.candidates"] = ir.ArrayAttr.get(
                [ir.DictAttr.get(config_attrs(c)) for c in candidates(kind, anchor, cfg, precision)]
            )
        if "tnx.precision" in module.attributes:
            fn.attributes["tnx.precision"] = module.attributes["tnx.precision"]
