// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks | filecheck %s --check-prefix=TILE
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse | filecheck %s --check-prefix=LOWER
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton | filecheck %s --check-prefix=TRITON

// A dynamic module: `tnx.symbols` names the symbolic sizes and the sample each was
// compiled at (a prime: 13 x 64 is batch x 64). The Gemm's M is `batch`: the grid is an
// expression the runtime evaluates, and blocks are chosen for the hint (128), not for 13.
// TILE: tnx.block = {BLOCK_K = 64 : i64, BLOCK_M = 128 : i64, BLOCK_N = 32 : i64}
// TILE-SAME: tnx.grid_sizes = ["(-(-(batch) // 128))", "1", "1"], tnx.kind = "gemm"
// TILE: tnx.grid_sizes = ["(-(-(batch) // 128))"], tnx.kind = "softmax"
// Row masks compare with the kernel's `batch` argument (tile.symbol), not with 13.
// LOWER-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// LOWER: %[[B:.*]] = "tile.symbol"() {symbol = "batch"} : () -> i32
// LOWER-NEXT: %[[BS:.*]] = "tile.splat"(%[[B]]) {dims = ["BLOCK_M", "1"]} : (i32) -> tensor<128x1xi32>
// LOWER-NEXT: arith.cmpi slt, %{{.*}}, %[[BS]] : tensor<128x1xi32>
// LOWER-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// LOWER: "tile.symbol"() {symbol = "batch"}
// The printer makes `batch` a scalar argument of the Triton kernel, after the buffers.
// TRITON: tnx.symbol_args = ["batch"]
// TRITON: tnx.symbol_args = ["batch"]
module attributes {tnx.symbols = {batch = 13 : i64}} {
  func.func @main(%x: tensor<13x64xf32>) -> tensor<13x32xf32> {
    %w = "tnx.constant"() {value = dense<0.5> : tensor<64x32xf32>} : () -> tensor<64x32xf32>
    %g = "tnx.gemm"(%x, %w) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<13x64xf32>, tensor<64x32xf32>) -> tensor<13x32xf32>
    %s = "tnx.softmax"(%g) {axis = 1 : i64} : (tensor<13x32xf32>) -> tensor<13x32xf32>
    %r = "tnx.relu"(%s) : (tensor<13x32xf32>) -> tensor<13x32xf32>
    return %r : tensor<13x32xf32>
  }
}
