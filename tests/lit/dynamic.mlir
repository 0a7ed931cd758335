// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks | filecheck %s --check-prefix=TILE
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse | filecheck %s --check-prefix=LOWER
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton | filecheck %s --check-prefix=TRITON

// A dynamic module: `tnx.symbols` names the symbols with their size hints; a dynamic
// dimension is `?` with its expression in the type's encoding. The Gemm's M is `batch`:
// the grid is an expression the runtime evaluates, and blocks are chosen for the hint.
// TILE: tnx.block = {BLOCK_K = 64 : i64, BLOCK_M = 128 : i64, BLOCK_N = 32 : i64}
// TILE-SAME: tnx.grid_sizes = ["(-(-(batch) // 128))", "1", "1"], tnx.kind = "gemm"
// TILE: tnx.grid_sizes = ["(-(-(batch) // 128))"], tnx.kind = "softmax"
// Row masks compare with the kernel's `batch` argument (tile.symbol).
// LOWER-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// LOWER: %[[B:.*]] = "tile.symbol"() {symbol = "batch"} : () -> i32
// LOWER-NEXT: %[[BS:.*]] = "tile.splat"(%[[B]]) {dims = ["BLOCK_M", "1"]} : (i32) -> tensor<128x1xi32>
// LOWER-NEXT: arith.cmpi slt, %{{.*}}, %[[BS]] : tensor<128x1xi32>
// LOWER-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// LOWER: "tile.symbol"() {symbol = "batch"}
// The printer makes `batch` a scalar argument of the Triton kernel, after the buffers.
// TRITON: tnx.symbol_args = ["batch"]
// TRITON: tnx.symbol_args = ["batch"]
module attributes {tnx.symbols = {batch = 128 : i64}} {
  func.func @main(%x: tensor<?x64xf32, ["batch"]>) -> tensor<?x32xf32, ["batch"]> {
    %w = "tnx.constant"() {value = dense<0.5> : tensor<64x32xf32>} : () -> tensor<64x32xf32>
    %g = "tnx.gemm"(%x, %w) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<?x64xf32, ["batch"]>, tensor<64x32xf32>) -> tensor<?x32xf32, ["batch"]>
    %s = "tnx.softmax"(%g) {axis = 1 : i64} : (tensor<?x32xf32, ["batch"]>) -> tensor<?x32xf32, ["batch"]>
    %r = "tnx.relu"(%s) : (tensor<?x32xf32, ["batch"]>) -> tensor<?x32xf32, ["batch"]>
    return %r : tensor<?x32xf32, ["batch"]>
  }
}
