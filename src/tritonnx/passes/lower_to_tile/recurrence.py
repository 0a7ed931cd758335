"""LSTM, GRU and RNN (tile kind "recurrence"): the whole recurrence of one layer in one
kernel. A program per BLOCK_M batch rows and direction (program_id(1); reverse for the
second of a bidirectional layer) loops over the time steps inside the kernel, carrying h
(and c for LSTM) in registers: at each step h·R_g^T per gate via tl.dot (R^T tiles of
BLOCK_N x BLOCK_N, the hidden size padded to 16 or more and masked, held in registers
where all gates' fit in HELD_R_GPU (HELD_R_INTERPRETER) elements, else re-read from L2
each step), plus the projected input XW[t] (X·W^T + Wb, computed for all steps by one GEMM
before), Rb, the peepholes, clip and the gate activations, then Y[t] is stored. Past a
row's sequence length the state is carried unchanged and Y is zero; the final states are
stored after Y (the result stacks Y, Y_h, Y_c on axis 0: `tritonnx.importers.recurrent`).

LSTM-22, GRU-22, RNN-22: https://onnx.ai/onnx/operators/onnx__LSTM.html (GRU, RNN)
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import scf

from tritonnx.dialects.builders import attrs_of, operand, shape_of
from tritonnx.passes.elementwise import OPS as ELEMENTWISE
from tritonnx.passes.index_maps import Emitter
from tritonnx.passes.lower_to_tile.common import block_start, dot_inputs

GATES = {"tnx.lstm": 4, "tnx.gru": 3, "tnx.rnn": 1}
# elements of R^T (all gates) a program keeps in registers across the steps: 16 KB of fp32
# on a GPU (32 registers a thread at 4 warps), 64 KB in the interpreter (fewer ops a step)
HELD_R_GPU, HELD_R_INTERPRETER = 4096, 16384
FUNCTIONS = {"tnx.lstm": 3, "tnx.gru": 2, "tnx.rnn": 1}  # activation functions per direction


def activation(b, name: str, x, alpha: float, beta: float):
    """One of the spec's activation functions on tile `x`."""
    if name == "Affine":
        return b.binary("add", b.binary("mul", x, alpha), beta)
    if name == "ScaledTanh":
        return b.binary("mul", ELEMENTWISE["tnx.tanh"](b, [b.binary("mul", x, beta)], {}), alpha)
    snake = {"LeakyRelu": "leaky_relu", "ThresholdedRelu": "thresholded_relu", "HardSigmoid": "hard_sigmoid"}
    fn = ELEMENTWISE[f"tnx.{snake.get(name, name.lower())}"]
    return fn(b, [x], {"alpha": alpha, "beta": beta})


def recurrence_kernel(b, kernel, args, out_value, cfg, anchor):
    """LSTM-22 / GRU-22 / RNN-22 from the projected input: see the module docstring."""
    bm, bn = cfg["BLOCK_M"], cfg["BLOCK_N"]
    a = attrs_of(anchor)
    gates, n_fn = GATES[anchor.name], FUNCTIONS[anchor.name]
    xw, r = anchor.operands[0], anchor.operands[1]
    out_dims = shape_of(anchor.results[0])  # [seq + states, directions, batch, hidden]
    seq, batch, hidden = out_dims[0] - (2 if anchor.name == "tnx.lstm" else 1), out_dims[2], out_dims[3]
    direction = a["direction"]
    bias, lens = operand(anchor, "b"), operand(anchor, "sequence_lens")
    h0 = operand(anchor, "initial_h")
    c0 = operand(anchor, "initial_c") if anchor.name == "tnx.lstm" else None
    peep = operand(anchor, "p") if anchor.name == "tnx.lstm" else None
    out = args["out"]
    dt, prec = dot_inputs(kernel)

    rows = b.name(b.expand(block_start(b, 0, bm, bm), 1), "offs_b")  # [BM, 1] batch rows
    cols = b.name(b.expand(b.arange(bn), 0), "offs_h")  # [1, BN] hidden units
    ks = b.name(b.expand(b.arange(bn), 1), "offs_k")  # [BN, 1] R^T's rows
    d = b.name(b.program_id(1), "direction")
    row_ok, col_ok = b.name(b.cmp("lt", rows, batch), "mask_b"), b.name(b.cmp("lt", cols, hidden), "mask_h")
    mask = b.name(b.and_(row_ok, col_ok), "mask")  # [BM, BN]
    r_mask = b.name(b.and_(b.cmp("lt", ks, hidden), col_ok), "mask_r")  # [BN, BN]
    dd = b.splat(d, [1, 1])
    em = Emitter(b, args, [bm, bn])

    def at(v, idx):
        """`idx` with None for the size-1 dimensions of `v` (the Emitter's convention)."""
        return [None if n == 1 else i for i, n in zip(idx, shape_of(v))]

    def gate_col(g):
        return b.binary("add", cols, g * hidden) if g else cols

    # loop-invariant vectors: Rb (the second half of B) and the peepholes, [1, BN] each
    e1 = Emitter(b, args, [1, bn])
    rb = (
        [e1(bias, at(bias, [dd, b.binary("add", cols, (gates + g) * hidden)]), col_ok) for g in range(gates)]
        if bias is not None
        else None
    )
    pv = [e1(peep, at(peep, [dd, gate_col(g)]), col_ok) for g in range(3)] if peep is not None else None  # i, o, f
    length = (
        b.name(b.convert(Emitter(b, args, [bm, 1])(lens, [rows], row_ok), b.idx), "seq_len")
        if lens is not None
        else None
    )  # [BM, 1]
    zero = b.const(0.0, [bm, bn], b.f32)
    h = (
        b.name(em(h0, at(h0, [dd, rows, cols]), mask), "h0")
        if h0 is not None
        else b.name(b.zeros_like(zero, 0.0), "h0")
    )
    carried = [h]
    if anchor.name == "tnx.lstm":
        c = (
            b.name(em(c0, at(c0, [dd, rows, cols]), mask), "c0")
            if c0 is not None
            else b.name(b.zeros_like(zero, 0.0), "c0")
        )
        carried.append(c)

    # the activations of this program's direction (a bidirectional layer's second: reverse)
    names, alphas, betas = a["activations"], a["activation_alpha"], a["activation_beta"]
    rev_dir = b.cmp("eq", d, 1) if direction == "bidirectional" else None

    def act(j, x):
        """Activation function j (f, g, h) of this direction on tile x."""
        fwd = activation(b, names[j], x, alphas[j], betas[j])
        if rev_dir is None or (names[j], alphas[j], betas[j]) == (
            names[n_fn + j],
            alphas[n_fn + j],
            betas[n_fn + j],
        ):
            return fwd
        back = activation(b, names[n_fn + j], x, alphas[n_fn + j], betas[n_fn + j])
        return b.select(b.splat(rev_dir, shape_of_tile(x)), back, fwd)

    clip = a.get("clip")

    def clipped(x):
        return b.binary("min", b.binary("max", x, -clip), clip) if clip is not None else x

    def r_tile(emitter, g):
        return emitter(r, at(r, [dd, gate_col(g), ks]), r_mask)

    interpreter = (
        "tnx.target" in kernel.attributes and ir.StringAttr(kernel.attributes["tnx.target"]).value == "interpreter"
    )
    held = HELD_R_INTERPRETER if interpreter else HELD_R_GPU
    # R^T of every gate held in registers across the steps where it fits (`held` elements),
    # else re-read each step (from L2: every program reads the same R)
    r_held = [r_tile(Emitter(b, args, [bn, bn]), g) for g in range(gates)] if gates * bn * bn <= held else None
    loop = b.for_range(0, seq, 1, carried)
    with ir.InsertionPoint(loop.body):
        s = b.name(b.splat(b.loop_index(loop.induction_variable), [bm, 1]), "step")
        # the time index of step s: s forward, len - 1 - s (or seq - 1 - s) in reverse
        last = b.binary("sub", length, 1) if length is not None else b.const(seq - 1, [bm, 1], b.idx)
        back = b.binary("sub", last, s)
        if direction == "forward":
            t = s
        elif direction == "reverse":
            t = back
        else:
            t = b.select(b.splat(rev_dir, [bm, 1]), back, s)
        t = b.name(t, "t")
        valid = b.name(b.cmp("lt", s, length), "live") if length is not None else None
        t_safe = b.select(valid, t, s) if valid is not None else t  # in range where not live
        live = b.and_(mask, valid) if valid is not None else mask
        step_row = b.binary("add", b.binary("mul", t_safe, batch), rows)  # XW's row of step t, batch row b
        h_prev = loop.inner_iter_args[0]
        hd = dt(b, h_prev)
        ed = Emitter(b, args, [bn, bn])
        el = Emitter(b, args, [bm, bn])

        def recur(g, hv=None):
            """(h or `hv`)·R_g^T: R_g^T[k, j] = R[d, g*H + j, k]."""
            rt = r_held[g] if r_held is not None else r_tile(ed, g)
            return b.dot(dt(b, hv) if hv is not None else hd, dt(b, rt), b.zeros_like(zero, 0.0), prec)

        def xin(g):
            return el(xw, at(xw, [dd, step_row, gate_col(g)]), live)

        def rbias(g):
            return rb[g] if rb is not None else None

        def plus(*xs):
            out_ = None
            for x in xs:
                if x is not None:
                    out_ = x if out_ is None else b.binary("add", out_, x)
            return out_

        if anchor.name == "tnx.lstm":  # gates i, o, f, c
            c_prev = loop.inner_iter_args[1]
            pi, po, pf = pv if pv is not None else (None, None, None)
            i_g = act(
                0, clipped(plus(xin(0), recur(0), rbias(0), b.binary("mul", pi, c_prev) if pi is not None else None))
            )
            if a["input_forget"]:
                f_g = b.binary("sub", 1.0, i_g)
            else:
                f_g = act(
                    0,
                    clipped(plus(xin(2), recur(2), rbias(2), b.binary("mul", pf, c_prev) if pf is not None else None)),
                )
            c_hat = act(1, clipped(plus(xin(3), recur(3), rbias(3))))
            c_new = b.name(b.binary("add", b.binary("mul", f_g, c_prev), b.binary("mul", i_g, c_hat)), "c")
            o_g = act(
                0, clipped(plus(xin(1), recur(1), rbias(1), b.binary("mul", po, c_new) if po is not None else None))
            )
            h_new = b.binary("mul", o_g, act(2, c_new))
            new_state = [h_new, c_new]
        elif anchor.name == "tnx.gru":  # gates z, r, h
            z = act(0, clipped(plus(xin(0), recur(0), rbias(0))))
            rr = act(0, clipped(plus(xin(1), recur(1), rbias(1))))
            if a["linear_before_reset"]:
                hh = b.binary("mul", rr, plus(recur(2), rbias(2)))
            else:
                hh = plus(recur(2, b.binary("mul", rr, h_prev)), rbias(2))
            h_hat = act(1, clipped(plus(xin(2), hh)))
            h_new = b.binary("add", b.binary("mul", b.binary("sub", 1.0, z), h_hat), b.binary("mul", z, h_prev))
            new_state = [h_new]
        else:
            h_new = act(0, clipped(plus(xin(0), recur(0), rbias(0))))
            new_state = [h_new]
        if valid is not None:  # past a row's length: the state is carried, Y is zero
            vb = b.broadcast(valid, [bm, bn])
            y = b.select(vb, new_state[0], b.full_like(new_state[0], 0.0))
            new_state = [b.select(vb, n, o) for n, o in zip(new_state, loop.inner_iter_args)]
        else:
            y = new_state[0]
        new_state[0] = b.name(new_state[0], "h")
        _store(b, out, out_dims, [t_safe, dd, rows, cols], y, mask)
        scf.YieldOp(new_state)
    for j, state in enumerate(loop.results):  # Y_h (and Y_c): after Y on axis 0
        _store(b, out, out_dims, [b.const(seq + j, [1, 1], b.idx), dd, rows, cols], state, mask)


def shape_of_tile(x):
    return list(ir.RankedTensorType(x.type).shape)


def _store(b, out, dims, idx, value, mask):
    """Stores `value` [BM, BN] into the result at indices `idx` (one per dimension)."""
    from tritonnx.dialects.tile import linearize

    offs = linearize(b, [None if n == 1 else i for i, n in zip(idx, dims)], dims)
    shp = shape_of_tile(value)
    offs = b.broadcast(offs, shp) if offs is not None else b.const(0, shp, b.idx)
    want = ir.RankedTensorType(out.type).element_type
    b.store(out, offs, b.convert(value, want), b.broadcast(mask, shp))
