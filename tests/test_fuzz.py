"""Differential fuzzing in the suite: seeded random graphs (`tritonnx.fuzz`) against onnxruntime.

Each seed is one graph of 1-12 random ops at opset 17-21; tritonnx must give onnxruntime's
numbers (or the ONNX reference evaluator's, where onnxruntime departs from it), or refuse
the graph with a TritonnxError. `bench/fuzz.py` runs the same generator over many seeds.
"""

import collections

import numpy as np
import pytest

from tritonnx import fuzz

SEEDS = range(300)
# seed -> the bug it hits (each one reported; remove the entry when the bug is fixed)
KNOWN = {}
OK = ("match", "ort_differs", "refused")  # refused: tritonnx said why it cannot compile the graph


def _param(seed):
    if seed in KNOWN:
        return pytest.param(seed, marks=pytest.mark.xfail(reason=KNOWN[seed], strict=False))
    return seed


@pytest.mark.parametrize("seed", [_param(s) for s in SEEDS])
def test_fuzz_seed(seed, tmp_path):
    case = fuzz.generate(seed)
    result = fuzz.check(case, tmp_path / "repro")
    if result.status in ("ort_refused", "invalid"):
        pytest.skip(f"{result.status}: {result.detail}")
    assert result.status in OK, (
        f"seed {seed} ({', '.join(result.ops)}): {result.status}: {result.detail}\n"
        f"reproduce: tritonnx.fuzz.check(tritonnx.fuzz.generate({seed}))"
    )


def test_fuzz_covers_op_types():
    """The seeds of the suite exercise many op types, at every opset from 17 to 21, and
    onnx accepts every graph the generator makes."""
    ops, opsets, invalid = collections.Counter(), set(), []
    for seed in SEEDS:
        case = fuzz.generate(seed)
        if case.invalid:
            invalid.append((seed, case.invalid))
        if seed not in KNOWN:
            ops.update(case.ops)
        opsets.add(case.opset)
    assert not invalid
    assert len(ops) >= 20, sorted(ops)
    assert len(ops) >= 80, f"only {len(ops)} op types: {sorted(ops)}"
    assert opsets == {17, 18, 19, 20, 21}


def test_generate_is_deterministic():
    a, b = fuzz.generate(7), fuzz.generate(7)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    assert a.feeds.keys() == b.feeds.keys()
    assert all(np.array_equal(a.feeds[k], b.feeds[k], equal_nan=a.feeds[k].dtype.kind == "f") for k in a.feeds)
