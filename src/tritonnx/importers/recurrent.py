"""LSTM-22, GRU-22 and RNN-22 as tnx ops: the input projection and the recurrence.

https://onnx.ai/onnx/operators/onnx__LSTM.html (GRU, RNN likewise). A node becomes
- the input projection of every step and direction as one batched MatMul:
  XW = X[1, seq*batch, input] @ W^T[num_directions, input, gates*hidden] (+ Wb), of
  shape [num_directions, seq*batch, gates*hidden] (row t*batch + b: step t, batch row b);
- one `tnx.lstm` / `tnx.gru` / `tnx.rnn` (the recurrence: one kernel, all time steps)
  whose result stacks Y [seq, num_directions, batch, hidden], then Y_h (and Y_c for LSTM)
  along axis 0, always in layout 0;
- Slices and Reshapes of that result for Y, Y_h and Y_c, and Transposes for layout 1.
The activations are normalized: one name per gate function and direction (the spec's
defaults filled in), with one alpha and beta each (the defaults onnxruntime uses where an
activation takes one and the node gives none; 0 where it takes none).
"""

from __future__ import annotations

from mlir import ir

from tritonnx.dialects.builders import create, shape_of, tensor_type

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
# activation -> (default alpha, default beta); None: the activation takes no such parameter
PARAMETERS = {
    "Relu": (None, None),
    "Tanh": (None, None),
    "Sigmoid": (None, None),
    "Softsign": (None, None),
    "Softplus": (None, None),
    "Affine": (1.0, 0.0),
    "LeakyRelu": (0.01, None),
    "ThresholdedRelu": (1.0, None),
    "ScaledTanh": (1.0, 1.0),
    "HardSigmoid": (0.2, 0.5),
    "Elu": (1.0, None),
}


def activations(op: str, attrs: dict, directions: int) -> tuple[list[str], list[float], list[float]]:
    """(names, alphas, betas): one per gate function and direction. Raises ValueError for an
    activation the spec does not list."""
    names = list(attrs.get("activations") or DEFAULT_ACTIVATIONS[op] * directions)
    if len(names) == len(DEFAULT_ACTIVATIONS[op]) and directions == 2:
        names = names * 2
    alphas, betas = list(attrs.get("activation_alpha") or []), list(attrs.get("activation_beta") or [])
    out_a, out_b = [], []
    for n in names:
        key = next((k for k in PARAMETERS if k.lower() == n.lower()), None)
        if key is None:
            raise ValueError(f"activation {n!r} is not one of {', '.join(PARAMETERS)}")
        da, db = PARAMETERS[key]
        out_a.append(float(alphas.pop(0)) if da is not None and alphas else float(da or 0.0))
        out_b.append(float(betas.pop(0)) if db is not None and betas else float(db or 0.0))
    canon = [next(k for k in PARAMETERS if k.lower() == n.lower()) for n in names]
    return canon, out_a, out_b


def import_recurrent(op: str, ins: list, attrs: dict, out_types: list, used: list[bool]) -> list:
    """The values of a recurrent node's outputs (Y, Y_h, Y_c; None where not used) from its
    inputs `ins` (None for an omitted optional one), `attrs` (the spec's defaults filled in),
    the outputs' types `out_types` and which are `used`. Creates the ops at the current
    insertion point. Raises ValueError as `activations` does."""
    ins = list(ins) + [None] * (8 - len(ins))
    x, w, r, bias, seq_lens, h0 = ins[:6]
    c0, p = (ins[6], ins[7]) if op == "LSTM" else (None, None)
    layout = int(attrs.get("layout", 0))
    et = shape_type(x)
    if layout:  # batch-major: the recurrence runs on [seq, batch, ...]
        x = _transpose(x, [1, 0, 2])
        h0 = _transpose(h0, [1, 0, 2]) if h0 is not None else None
        c0 = _transpose(c0, [1, 0, 2]) if c0 is not None else None
    seq, batch, n_in = shape_of(x)
    directions, gh, _ = shape_of(w)
    hidden = gh // GATES[op]
    flat = create("tnx.reshape", [x], [tensor_type([1, seq * batch, n_in], et)]).result
    wt = _transpose(w, [0, 2, 1])
    xw = create("tnx.mat_mul", [flat, wt], [tensor_type([directions, seq * batch, gh], et)]).result
    if bias is not None:  # Wb, the first half of B, joins the projection (Rb stays in the recurrence)
        wb = create("tnx.slice", [bias], [tensor_type([directions, gh], et)], dict(starts=[0, 0], steps=[1, 1])).result
        wb = create("tnx.reshape", [wb], [tensor_type([directions, 1, gh], et)]).result
        xw = create("tnx.add", [xw, wb], [tensor_type([directions, seq * batch, gh], et)]).result
    names, alphas, betas = activations(op, attrs, directions)
    rec_attrs = dict(
        activations=names,
        activation_alpha=alphas,
        activation_beta=betas,
        direction=attrs.get("direction", "forward"),
    )
    if attrs.get("clip") is not None:
        rec_attrs["clip"] = float(attrs["clip"])
    if op == "LSTM":
        rec_attrs["input_forget"] = int(attrs.get("input_forget", 0))
    if op == "GRU":
        rec_attrs["linear_before_reset"] = int(attrs.get("linear_before_reset", 0))
    states = 2 if op == "LSTM" else 1
    packed_t = tensor_type([seq + states, directions, batch, hidden], et)
    operands = [xw, r, bias, seq_lens, h0] + ([c0, p] if op == "LSTM" else [])
    packed = create(f"tnx.{op.lower()}", operands, [packed_t], rec_attrs).result
    outs: list = []
    for j, u in enumerate(used):
        if not u:
            outs.append(None)
            continue
        start, size = (0, seq) if j == 0 else (seq + j - 1, 1)
        part = create(
            "tnx.slice",
            [packed],
            [tensor_type([size, directions, batch, hidden], et)],
            dict(starts=[start, 0, 0, 0], steps=[1, 1, 1, 1]),
        ).result
        if j == 0:  # Y: [seq, num_directions, batch, hidden], or [batch, seq, num_directions, hidden]
            outs.append(_transpose(part, [2, 0, 1, 3]) if layout else part)
        else:  # Y_h, Y_c: [num_directions, batch, hidden], or [batch, num_directions, hidden]
            state = create("tnx.reshape", [part], [tensor_type([directions, batch, hidden], et)]).result
            outs.append(_transpose(state, [1, 0, 2]) if layout else state)
    return outs


def shape_type(v):
    return ir.RankedTensorType(v.type).element_type


def _transpose(v, perm: list[int]):
    dims = shape_of(v)
    return create("tnx.transpose", [v], [tensor_type([dims[p] for p in perm], shape_type(v))], dict(perm=perm)).result
