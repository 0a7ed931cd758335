"""LSTM-22, GRU-22 and RNN-22 layers too wide for the one-kernel recurrence (hidden size
above `passes.choose_blocks.MAX_RECURRENT_HIDDEN`: its state and R^T would not stay on
chip) as ONNX nodes per time step, which the pipeline fuses like any graph: per step and
direction, h·R^T as a GEMM with the projected input and Rb added in, and the gates, their
activations and the state update as one pointwise kernel (GRU without
linear_before_reset: a second GEMM for (r ⊙ h)·R_h^T). The input projection of all steps
stays one MatMul per direction. The nodes are named `<node>/t<step>/d<direction>/...`, so
the report's kernels say which layer and step they run.

The equations are the spec's (https://onnx.ai/onnx/operators/onnx__LSTM.html, GRU, RNN):
gates in the order i, o, f, c (LSTM), z, r, h (GRU); peepholes, clip, input_forget,
activations with their alpha and beta (`recurrent.activations`), `layout`, directions, and
sequence_lens (past a row's length the state is carried and Y is zero; a reverse direction
runs over each row's own length, through ReverseSequence). Needs a static sequence length.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tritonnx.importers.recurrent import GATES, activations


class _Nodes:
    def __init__(self, prefix: str, dtype: np.dtype):
        self.prefix, self.dtype = prefix, dtype
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def __call__(self, op: str, ins: list[str], what: str, out: str | None = None, **attrs) -> str:
        self.n += 1
        out = out or f"{self.prefix}/{what}_{self.n}"
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def const(self, value, dtype=None) -> str:
        self.n += 1
        name = f"{self.prefix}/const_{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype or self.dtype), name))
        return name

    def ints(self, values: int | list[int]) -> str:
        return self.const(values, np.int64)


def _activation(g: _Nodes, name: str, x: str, alpha: float, beta: float, what: str) -> str:
    if name == "Affine":
        return g("Add", [g("Mul", [x, g.const(alpha)], what), g.const(beta)], what)
    if name == "ScaledTanh":
        return g("Mul", [g("Tanh", [g("Mul", [x, g.const(beta)], what)], what), g.const(alpha)], what)
    if name in ("LeakyRelu", "ThresholdedRelu", "Elu"):
        return g(name, [x], what, alpha=alpha)
    if name == "HardSigmoid":
        return g(name, [x], what, alpha=alpha, beta=beta)
    return g(name, [x], what)


def unroll(node: onnx.NodeProto, name: str, shapes: dict[str, list[int]], dtype: np.dtype) -> _Nodes:
    """The per-step nodes of recurrent `node` (named `name`), given the static shapes of its
    inputs (`shapes`, by name) and its element type; they write the node's outputs under
    their names. Raises ValueError for an activation the spec does not list."""
    op = node.op_type
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    ins = list(node.input) + [""] * (8 - len(node.input))
    x, w, r, bias, lens, h0 = ins[:6]
    c0, peep = (ins[6], ins[7]) if op == "LSTM" else ("", "")
    g = _Nodes(name, dtype)
    layout = int(attrs.get("layout", 0))
    if layout:  # batch-major: the steps run on [seq, batch, ...]
        x = g("Transpose", [x], "x", perm=[1, 0, 2])
        h0 = g("Transpose", [h0], "h0", perm=[1, 0, 2]) if h0 else ""
        c0 = g("Transpose", [c0], "c0", perm=[1, 0, 2]) if c0 else ""
    directions, gh, _ = shapes[w]
    hidden = gh // GATES[op]
    seq = shapes[node.input[0]][1 if layout else 0]
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    names, alphas, betas = activations(
        op,
        {
            k: [v.decode() if isinstance(v, bytes) else v for v in attrs[k]] if k == "activations" else attrs[k]
            for k in attrs
        },
        directions,
    )
    n_fn = {"LSTM": 3, "GRU": 2, "RNN": 1}[op]
    clip = attrs.get("clip")
    lbr = int(attrs.get("linear_before_reset", 0))
    ys, yhs, ycs = [], [], []
    lens64 = g("Cast", [lens], "lens", to=TensorProto.INT64) if lens else ""
    valid_rows = g("Unsqueeze", [lens64, g.ints([1])], "lens") if lens else ""
    for d in range(directions):
        dd = g.ints([d])
        reverse = direction == "reverse" or d == 1
        pre = f"d{d}"

        def pick(t: str, what: str, dd: str = dd) -> str:  # tensor t's direction d: [D, ...] -> [...]
            return g("Squeeze", [g("Gather", [t, dd], what, axis=0), g.ints([0])], what)

        xs = x
        if reverse and lens:  # each row reversed over its own length
            xs = g("ReverseSequence", [x, lens64], "xrev", time_axis=0, batch_axis=1)
        w_t = g("Transpose", [pick(w, f"{pre}/w")], f"{pre}/wt", perm=[1, 0])
        xw = g("MatMul", [xs, w_t], f"{pre}/xw")  # [seq, batch, G*H]: every step's projection
        rb = None
        if bias:
            b_d = pick(bias, f"{pre}/b")
            xw = g("Add", [xw, g("Slice", [b_d, g.ints([0]), g.ints([gh]), g.ints([0])], f"{pre}/wb")], f"{pre}/xw")
            rb = g("Slice", [b_d, g.ints([gh]), g.ints([2 * gh]), g.ints([0])], f"{pre}/rb")
        r_d = pick(r, f"{pre}/r")  # [G*H, H]
        r_t = g("Transpose", [r_d], f"{pre}/rt", perm=[1, 0])  # [H, G*H]
        h = pick(h0, f"{pre}/h0") if h0 else None  # None: zeros
        c = pick(c0, f"{pre}/c0") if c0 else None
        p = (
            [
                g("Slice", [pick(peep, f"{pre}/p"), g.ints([k * hidden]), g.ints([(k + 1) * hidden]), g.ints([0])], "p")
                for k in range(3)
            ]
            if peep
            else None
        )
        out_steps: list[str] = []

        def act(j: int, v: str, what: str, d: int = d) -> str:
            k = d * n_fn + j
            if clip is not None:
                v = g("Clip", [v, g.const(-clip), g.const(clip)], what)
            return _activation(g, names[k], v, alphas[k], betas[k], what)

        for s in range(seq):
            t = s if not reverse or lens else seq - 1 - s
            at = f"t{t}/{pre}"
            xw_t = g("Gather", [xw, g.ints(t)], f"{at}/xw", axis=0)  # [batch, G*H]
            live = g("Less", [g.ints([s]), valid_rows], f"{at}/live") if lens else ""

            def keep(v: str, old: str | None, live: str = live, at: str = at) -> str:
                """Past a row's length the state stays as it was (zeros before the first step)."""
                if not live:
                    return v
                return g("Where", [live, v, old if old is not None else g.const(0.0)], f"{at}/keep")

            total = xw_t
            if h is not None and op != "GRU":  # GRU's h·R_h^T depends on its reset gate
                total = g("Add", [total, g("MatMul", [h, r_t], f"{at}/hr")], f"{at}/gates")
            if rb is not None and op != "GRU":
                total = g("Add", [total, rb], f"{at}/gates")

            def gate(k: int, v: str = total, at: str = at, axis: int = 1) -> str:
                return g("Slice", [v, g.ints([k * hidden]), g.ints([(k + 1) * hidden]), g.ints([axis])], f"{at}/g{k}")

            if op == "LSTM":  # i, o, f, c
                ii, oo, ff, cc = (gate(k) for k in range(4))
                if p is not None and c is not None:
                    ii = g("Add", [ii, g("Mul", [p[0], c], f"{at}/pi")], f"{at}/i")
                    ff = g("Add", [ff, g("Mul", [p[2], c], f"{at}/pf")], f"{at}/f")
                i_g = act(0, ii, f"{at}/i")
                f_g = g("Sub", [g.const(1.0), i_g], f"{at}/f") if attrs.get("input_forget") else act(0, ff, f"{at}/f")
                c_hat = act(1, cc, f"{at}/c")
                c_new = g("Mul", [i_g, c_hat], f"{at}/c")
                if c is not None:
                    c_new = g("Add", [g("Mul", [f_g, c], f"{at}/fc"), c_new], f"{at}/c")
                c_new = keep(c_new, c)  # h reads the kept state: a row past its length keeps h too
                if p is not None:
                    oo = g("Add", [oo, g("Mul", [p[1], c_new], f"{at}/po")], f"{at}/o")
                h_new = g("Mul", [act(0, oo, f"{at}/o"), act(2, c_new, f"{at}/hc")], f"{at}/h")
                new = [keep(h_new, h), c_new]
            elif op == "GRU":  # z, r, h; Rb per gate

                def rbg(k: int, rb: str | None = rb, at: str = at) -> str | None:
                    return gate(k, rb, f"{at}/rb", 0) if rb is not None else None

                def plus(*vs, at: str = at):
                    out = None
                    for v in vs:
                        if v is not None:
                            out = v if out is None else g("Add", [out, v], f"{at}/sum")
                    return out

                hr = g("MatMul", [h, r_t], f"{at}/hr") if h is not None else None
                xz, xr, xh = (gate(k, xw_t) for k in range(3))
                hz, hrr, hh_ = (gate(k, hr) for k in range(3)) if hr is not None else (None, None, None)
                z = act(0, plus(xz, hz, rbg(0)), f"{at}/z")
                rr = act(0, plus(xr, hrr, rbg(1)), f"{at}/r")
                if lbr:
                    inner = plus(hh_, rbg(2))
                    cand = plus(xh, g("Mul", [rr, inner], f"{at}/rh") if inner is not None else None)
                else:
                    rh = None
                    if h is not None:
                        r_h = g("Slice", [r_t, g.ints([2 * hidden]), g.ints([3 * hidden]), g.ints([1])], f"{at}/rht")
                        rh = g("MatMul", [g("Mul", [rr, h], f"{at}/rxh"), r_h], f"{at}/rh")
                    cand = plus(xh, rh, rbg(2))
                h_hat = act(1, cand, f"{at}/hh")
                h_new = g("Mul", [g("Sub", [g.const(1.0), z], f"{at}/1z"), h_hat], f"{at}/h")
                if h is not None:
                    h_new = g("Add", [h_new, g("Mul", [z, h], f"{at}/zh")], f"{at}/h")
                new = [keep(h_new, h)]
            else:
                new = [keep(act(0, total, f"{at}/h"), h)]
            # Y: the new h, zero past a row's length (where the kept h is the old one)
            y_t = g("Where", [live, new[0], g.const(0.0)], f"{at}/y") if lens else new[0]
            out_steps.append(g("Unsqueeze", [y_t, g.ints([0])], f"{at}/y"))
            h = new[0]
            c = new[1] if op == "LSTM" else None
        order = out_steps if not reverse or lens else out_steps[::-1]  # by time
        y_d = g("Concat", order, f"{pre}/y", axis=0) if len(order) > 1 else order[0]  # [seq, batch, H]
        if reverse and lens:
            y_d = g("ReverseSequence", [y_d, lens64], f"{pre}/y", time_axis=0, batch_axis=1)
        assert h is not None  # at least one step ran (`unroll_wide` checks)
        ys.append(g("Unsqueeze", [y_d, g.ints([1])], f"{pre}/y"))
        yhs.append(g("Unsqueeze", [h, g.ints([0])], f"{pre}/yh"))
        if op == "LSTM":
            assert c is not None
            ycs.append(g("Unsqueeze", [c, g.ints([0])], f"{pre}/yc"))
    outs = list(node.output) + [""] * (3 - len(node.output))
    for k, (parts, perm) in enumerate(((ys, [2, 0, 1, 3]), (yhs, [1, 0, 2]), (ycs, [1, 0, 2]))):
        if not outs[k]:
            continue
        v = g("Concat", parts, f"y{k}", axis=1 if k == 0 else 0) if len(parts) > 1 else parts[0]
        if layout:
            v = g("Transpose", [v], f"y{k}", perm=perm)
        g("Identity", [v], f"y{k}", out=outs[k])
    return g


def unroll_wide(model: onnx.ModelProto, max_hidden: int) -> list[tuple[str, str, int]]:
    """Rewrites in place each LSTM, GRU and RNN of `model`'s top-level graph (shape-inferred,
    static) whose hidden size exceeds `max_hidden` and whose inputs have static shapes into
    per-step nodes (`unroll`). Returns (node name, op type, hidden size) of each one."""
    from tritonnx.dialects.verify import node_names

    graph = model.graph
    infos = {vi.name: vi for vi in list(graph.input) + list(graph.value_info) + list(graph.output)}
    inits = {t.name: t for t in graph.initializer}

    def shape(name: str) -> list[int] | None:
        if name in inits:
            return list(inits[name].dims)
        vi = infos.get(name)
        if vi is None or not vi.type.tensor_type.HasField("shape"):
            return None
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
        return dims if all(v > 0 for v in dims) else None

    out: list[onnx.NodeProto] = []
    wide: list[tuple[str, str, int]] = []
    for node, name in zip(list(graph.node), node_names(graph)):
        if node.domain in ("", "ai.onnx") and node.op_type in GATES and len(node.input) > 2:
            found = {i: shape(i) for i in node.input if i}
            shapes = {i: v for i, v in found.items() if v is not None}
            w = shapes.get(node.input[1])
            layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
            if (
                w
                and len(shapes) == len(found)
                and w[1] // GATES[node.op_type] > max_hidden
                and shapes[node.input[0]][1 if layout else 0] >= 1
            ):
                elem = infos[node.input[0]].type.tensor_type.elem_type if node.input[0] in infos else TensorProto.FLOAT
                made = unroll(node, name, shapes, np.dtype(helper.tensor_dtype_to_np_dtype(elem)))
                out.extend(made.nodes)
                graph.initializer.extend(made.inits)
                wide.append((name, node.op_type, w[1] // GATES[node.op_type]))
                continue
        out.append(node)
    if wide:
        del graph.node[:]
        graph.node.extend(out)
    return wide
