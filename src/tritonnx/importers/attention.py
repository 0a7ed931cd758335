"""Attention-23, -24 and -25 (https://onnx.ai/onnx/operators/onnx__Attention.html) as the
ops match-attention fuses into the flash-attention kernel, in place of onnx's function
inliner (which fails on the optional inputs and outputs at these opsets).

Each Attention node with static input shapes becomes, in the model's own opset:
Q, K, V to [batch, heads, sequence, head size] (Reshape and Transpose of a 3D input),
`past_key`/`past_value` concatenated in front of K and V (the `present_*` outputs), K and V
repeated over the query heads of a group (GQA: Unsqueeze, Expand, Reshape, views the kernel
follows), then MatMul(Q, K^T), Mul by the scale, the softcap (Div, Tanh, Mul), the float
mask Add or the boolean mask Where, one Where for the causal, window and `nonpad_kv_seqlen`
masks, Softmax over the keys, MatMul by V, and back to 3D. The scores are masked with
-inf, as onnx.reference does (`onnx/reference/ops/op_attention.py`): the kernel's online
softmax gives a row with no key to attend 0, as the spec asks. Where the kernel does not
apply (a `qk_matmul_output` requested, a head size over MAX_HEAD_DIM) the Softmax is
followed by a guard that sets such rows to 0 (a plain Softmax would give NaN).

Differences from the reference: the scale multiplies the scores (the reference multiplies Q
and K by its square root each), and `softmax_precision` is not applied (the kernel's
softmax runs in float32). A node with an input of dynamic shape is refused
(UnsupportedModelError naming it); onnx's inliner's expansion does not shape-infer either.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from tritonnx.dialects.verify import inlined_name, label
from tritonnx.errors import InvalidModelError, UnsupportedModelError

MAX_HEAD_DIM = 256  # as passes.match_attention: a head's row of Q, K and V in one block


def expand(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with each default-domain Attention node whose input shapes are static
    replaced by its decomposition (a copy; `model` itself when there is none to replace).
    Raises InvalidModelError for head counts that do not divide the hidden sizes and
    UnsupportedModelError for an input of dynamic shape, each naming the node."""
    if not any(n.op_type == "Attention" and n.domain in ("", "ai.onnx") for n in model.graph.node):
        return model
    opset = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), 0)
    if opset < 23:
        return model
    try:
        inferred = shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - no shapes: the inliner's path
        return model
    types = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            types[vi.name] = ([d.dim_value for d in tt.shape.dim], tt.elem_type)
    for t in model.graph.initializer:
        types[t.name] = (list(t.dims), t.data_type)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes: list[onnx.NodeProto] = []
    sources = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    for i, node in enumerate(model.graph.node):
        if node.op_type == "Attention" and node.domain in ("", "ai.onnx"):
            made, inits = _Expansion(node, node.name or f"Attention_{i}", types, opset, sources).build()
            nodes.extend(made)
            out.graph.initializer.extend(inits)
            continue
        nodes.append(node)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


class _Expansion:
    def __init__(self, node: onnx.NodeProto, name: str, types: dict, opset: int, sources: set[str]):
        self.node, self.name, self.types, self.opset = node, name, types, opset
        self.sources = sources  # graph inputs and initializers: no op computes them
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    # -- building
    def fresh(self, what: str) -> str:
        self.count += 1
        return f"{self.node.output[0] or self.name}/attention/{what}_{self.count}"

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self.fresh(op_type.lower())
        j = len(self.nodes)
        self.nodes.append(
            helper.make_node(
                op_type, inputs, [out], name=inlined_name(self.name, "Attention", f"{op_type}_{j}"), **attrs
            )
        )
        return out

    def const(self, value, dtype: int | None = None) -> str:
        name = self.fresh("const")
        if dtype is None:
            self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        else:
            arr = np.asarray(value, np.float32)
            self.inits.append(helper.make_tensor(name, dtype, list(arr.shape), arr.flatten().tolist()))
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(values, np.int64))

    def fail(self, why: str):
        raise InvalidModelError(f"{label(self.name, 'Attention', self.opset)}: {why}.")

    # -- the decomposition
    def build(self) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
        node, a = self.node, self.attrs
        ins = list(node.input) + [""] * (7 - len(node.input))
        q, k, v, mask, past_k, past_v, nonpad = ins[:7]
        outs = list(node.output) + [""] * (4 - len(node.output))
        dynamic = next((n for n in (q, k, v, mask, past_k, past_v) if n and n not in self.types), None)
        if dynamic is not None:
            raise UnsupportedModelError(
                f"{label(self.name, 'Attention', self.opset)}: input '{dynamic}' has no static shape; tritonnx "
                "compiles Attention at static sizes only: give the input shapes with `shapes={name: [...]}` "
                "(CLI: --shape NAME=D1,D2,...)."
            )
        qs, dtype = self.types[q]
        ks, vs = self.types[k][0], self.types[v][0]
        if len(qs) == 3:
            qh, kvh = int(a.get("q_num_heads") or 0), int(a.get("kv_num_heads") or 0)
            if not qh or not kvh or qs[2] % qh or ks[2] % kvh or vs[2] % kvh:
                self.fail("3D inputs need q_num_heads and kv_num_heads that divide the hidden sizes")
            b, sq = qs[0], qs[1]
            d, dv = qs[2] // qh, vs[2] // kvh
            q4 = self.op("Transpose", [self.op("Reshape", [q, self.ints([b, sq, qh, d])])], perm=[0, 2, 1, 3])
            k4 = self.op("Transpose", [self.op("Reshape", [k, self.ints([b, ks[1], kvh, d])])], perm=[0, 2, 1, 3])
            v4 = self.op("Transpose", [self.op("Reshape", [v, self.ints([b, vs[1], kvh, dv])])], perm=[0, 2, 1, 3])
        elif len(qs) == 4:
            b, qh, sq, d = qs
            kvh, dv = ks[1], vs[3]
            q4, k4, v4 = q, k, v
        else:
            self.fail(f"Q has rank {len(qs)}, not 3 or 4")
        if qh % kvh:
            self.fail(f"{qh} query heads are not a multiple of {kvh} key/value heads")
        past = self.types[past_k][0][2] if past_k else 0
        if past_k:
            k4 = self.op("Concat", [past_k, k4], axis=2)
            v4 = self.op("Concat", [past_v, v4], axis=2)
        for made, out in ((k4, outs[1]), (v4, outs[2])):
            if out:
                self.op("Identity", [made], out)
        skv = past + (ks[1] if len(ks) == 3 else ks[2])
        if qh != kvh:  # each key/value head serves qh // kvh query heads, in order
            reps = qh // kvh
            k4 = self._repeat(k4, b, kvh, reps, skv, d)
            v4 = self._repeat(v4, b, kvh, reps, skv, dv)
        mode = a.get("qk_matmul_output_mode", 0)
        fused = not outs[3] and max(d, dv) <= MAX_HEAD_DIM
        s = self.op("MatMul", [q4, self.op("Transpose", [k4], perm=[0, 1, 3, 2])])
        scale = a.get("scale")
        scale = float(1 / np.sqrt(d)) if scale is None else float(scale)
        s = self.op("Mul", [s, self.const(scale, dtype)])
        cap = float(a.get("softcap", 0.0))
        if cap > 0:
            c = self.const(cap, dtype)
            s = self.op("Mul", [self.op("Tanh", [self.op("Div", [s, c])]), c])
        qk_out = s
        neg_inf = self.const(-np.inf, dtype)
        masked = False
        if mask:
            ms, mdt = self.types[mask]
            if len(ms) == 4 and ms == [b, qh, sq, skv] and mask not in self.sources:
                fused = False  # a computed mask of the scores' shape: match-attention cannot tell them apart
            if ms[-1] < skv:  # padded with keys not attended
                pads = [0] * (2 * len(ms))
                pads[2 * len(ms) - 1] = skv - ms[-1]
                fill = self.const(False) if mdt == onnx.TensorProto.BOOL else neg_inf
                mask = self.op("Pad", [mask, self.ints(pads), fill])
            if mdt == onnx.TensorProto.BOOL:
                s = self.op("Where", [mask, s, neg_inf])
            else:
                s = self.op("Add", [s, mask])
            masked = True
        allowed, full_shape = self._positions(a, b, sq, skv, past, nonpad)
        if allowed is not None:
            s = self.op("Where", [allowed, s, neg_inf])
            masked = True
            fused = fused and not full_shape(qh)
        if mode == 2:
            qk_out = s
        p = self.op("Softmax", [s], axis=-1)
        if masked and not fused:  # a row with no key to attend is 0, not NaN
            top = self.op("ReduceMax", [s, self.ints([-1])], keepdims=1)
            empty = self.op("IsInf", [top], detect_positive=0)
            p = self.op("Where", [empty, self.const(0.0, dtype), p])
        if mode == 3:
            qk_out = p
        if outs[3]:
            self.op("Identity", [qk_out], outs[3])
        y = self.op("MatMul", [p, v4], None if len(qs) == 3 else outs[0])
        if len(qs) == 3:
            y = self.op("Transpose", [y], perm=[0, 2, 1, 3])
            self.op("Reshape", [y, self.ints([b, sq, qh * dv])], outs[0])
        return self.nodes, self.inits

    def _repeat(self, x: str, b: int, kvh: int, reps: int, s: int, d: int) -> str:
        x = self.op("Unsqueeze", [x, self.ints([2])])
        x = self.op("Expand", [x, self.ints([b, kvh, reps, s, d])])
        return self.op("Reshape", [x, self.ints([b, kvh * reps, s, d])])

    def _positions(self, a: dict, b: int, sq: int, skv: int, past: int, nonpad: str):
        """The keys each query may attend by position (is_causal, the window, nonpad_kv_seqlen):
        a boolean tensor name ([sq, skv], or [b, 1, sq or 1, skv] over nonpad_kv_seqlen), or
        None when every key is allowed; and whether its shape is the scores' at `heads`."""
        causal = bool(a.get("is_causal", 0))
        left, right = int(a.get("left_window_size", -1)), int(a.get("right_window_size", -1))
        if not (causal or left >= 0 or right >= 0 or nonpad):
            return None, lambda heads: False
        i = np.arange(sq).reshape(sq, 1)
        j = np.arange(skv).reshape(1, skv)
        if not nonpad:  # offset: the keys before the first query (the past)
            diff = i + past - j
            ok = np.ones((sq, skv), bool)
            if causal:
                ok &= diff >= 0
            if left >= 0:
                ok &= diff <= left
            if right >= 0:
                ok &= -diff <= right
            return self.const(ok), lambda heads: False
        # per batch: offset = nonpad_kv_seqlen[b] - sq; keys at or past nonpad_kv_seqlen[b] are padding.
        # Every op is at the mask's full shape [b, 1, rows, skv], so partition fuses them all
        # into the kernel (a branch merges only at its reader's shape).
        n = self.op("Reshape", [self.op("Cast", [nonpad], to=onnx.TensorProto.INT64), self.ints([b, 1, 1, 1])])
        rows = sq if causal or left >= 0 or right >= 0 else 1
        keep = self.op("Less", [self.ints(np.broadcast_to(j, (rows, skv)).reshape(1, 1, rows, skv)), n])
        if rows == sq:  # rel = i + offset - j
            rel = self.op("Add", [self.ints((i - sq - j).reshape(1, 1, sq, skv)), n])
            zero = self.ints(0)
            if causal:
                keep = self.op("And", [keep, self.op("GreaterOrEqual", [rel, zero])])
            if left >= 0:
                keep = self.op("And", [keep, self.op("LessOrEqual", [rel, self.ints(left)])])
            if right >= 0:
                keep = self.op("And", [keep, self.op("GreaterOrEqual", [rel, self.ints(-right)])])
        return keep, lambda heads: heads == 1 and rows == sq
