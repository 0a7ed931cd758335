"""The device table (`tritonnx.target`) and the compile options (`CompileOptions`): the tile
pass tiles for the first target, the cost model and CLI read the same table, and the
options' key is the compile cache's."""

import dataclasses

import pytest
from mlir import ir

from tritonnx import target
from tritonnx.compiler.options import CompileOptions
from tritonnx.dialects import make_context
from tritonnx.errors import CompileError
from tritonnx.passes import Session, _session, use_session
from tritonnx.passes.choose_blocks import run as tile_run

GEMM = """
func.func @main(%a: tensor<1024x1024xf32>, %b: tensor<1024x1024xf32>) -> tensor<1024x1024xf32> {
  %0 = func.call @k(%a, %b) : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
  return %0 : tensor<1024x1024xf32>
}
func.func private @k(%a: tensor<1024x1024xf32>, %b: tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    attributes {tnx.kind = "mat_mul"} {
  %0 = "tnx.mat_mul"(%a, %b) : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
  return %0 : tensor<1024x1024xf32>
}
"""


def test_table():
    assert set(target.TARGETS) == {"sm_80", "sm_86", "sm_89", "sm_90"}
    for name, t in target.TARGETS.items():
        assert t.name == name and t.capability == int(name[3:]) and t.sms > 0
        assert t.peak_flops("fp16") >= t.peak_flops("tf32") >= t.peak_flops("fp32") > 0
    assert target.get("H100") is target.TARGETS["sm_90"] and target.get("A100").sms == 108
    with pytest.raises(KeyError, match="sm_90"):
        target.get("sm_70")
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.TARGETS["sm_90"].sms = 1


def test_options_key():
    a = CompileOptions(targets=("sm_90",), override_initializers=("w2", "w1"))
    assert a == CompileOptions(targets=("sm_90",), override_initializers=("w1", "w2")) and hash(a) == hash(
        CompileOptions(targets=("sm_90",), override_initializers=("w1", "w2"))
    )
    assert a.key() == CompileOptions(targets=("sm_90",), override_initializers=("w1", "w2")).key()
    assert a.key() != dataclasses.replace(a, precision="bf16").key()
    # the first target is the one tiled for: the order is part of the key
    assert CompileOptions(targets=("sm_80", "sm_90")).key() != CompileOptions(targets=("sm_90", "sm_80")).key()
    assert CompileOptions(targets=("sm_80", "sm_90")).gpu.name == "sm_80" and CompileOptions().gpu is None
    with pytest.raises(CompileError, match="unknown target 'sm_70'"):
        CompileOptions(targets=("sm_70",))


def _grid(options: CompileOptions) -> list[int]:
    token = use_session(Session(options=options))
    try:
        with make_context(), ir.Location.unknown():
            module = ir.Module.parse(GEMM)
            tile_run(module.operation)
            kernel = next(op for op in module.body.operations if "tnx.kind" in op.attributes)
            return list(ir.DenseI64ArrayAttr(kernel.attributes["tnx.grid"]))
    finally:
        _session.reset(token)


def test_tile_pass_tiles_for_the_first_target():
    """1024x1024 outputs: 128x128 blocks give 64 programs, fewer than either GPU's SMs, so
    the blocks shrink until the grid covers the SMs: 108 on an A100, 132 on an H100."""
    sm80, sm90 = _grid(CompileOptions(targets=("sm_80",))), _grid(CompileOptions(targets=("sm_90", "sm_80")))
    assert sm80 == [16, 8, 1] and sm90 == [16, 16, 1]  # BLOCK_M 64 x BLOCK_N 128, then BLOCK_N 64
    assert _grid(CompileOptions(targets=("sm_80", "sm_90"))) == sm80
    assert _grid(CompileOptions()) != sm90  # the interpreter's table
