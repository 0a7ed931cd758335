// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse --mlir-print-debuginfo | filecheck %s
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton --print-triton | filecheck %s --check-prefix=TRITON

// A softmax row longer than one block (GPT-2's 50,257-token vocabulary) or of a dynamic
// length is read in BLOCK_R chunks: a first loop carries the running maximum m and the sum
// l, rescaled by alpha = exp(m - m_new) whenever the maximum grows (online softmax); a
// second loop writes exp(x - m) / l. No run-time guard limits a dynamic row's length.
// CHECK-NOT: runs in one block
// CHECK-LABEL: func.func private @softmax_f32_
// CHECK-SAME: tensor<2x50257xf32>
// CHECK-SAME: tnx.block = {BLOCK_P = 2 : i64, BLOCK_R = 16384 : i64}
// CHECK: %[[STEP:.*]] = "tile.constexpr"() {name = "BLOCK_R", {{.*}}} : () -> index
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STEP]] iter_args(%[[M:.*]] = %{{.*}}, %[[L:.*]] = %{{.*}}) -> (tensor<2xf32>, tensor<2xf32>) {
// CHECK: "tile.load"
// CHECK: %[[CM:.*]] = "tile.reduce"(%{{.*}}) {axis = 1 : i64, kind = "max"}
// CHECK: %[[MNEW:.*]] = arith.maximumf %[[M]], %[[CM]] : tensor<2xf32> loc("m_new"
// CHECK: %[[SHIFT:.*]] = arith.select %{{.*}}, %{{.*}}, %[[MNEW]] : {{.*}} loc("shift"
// CHECK: %[[D:.*]] = arith.subf %[[M]], %[[SHIFT]]
// CHECK: %[[ALPHA:.*]] = math.exp %[[D]] : {{.*}} loc("alpha"
// CHECK: %[[OLD:.*]] = arith.mulf %[[L]], %[[ALPHA]]
// CHECK: %[[SUM:.*]] = "tile.reduce"(%{{.*}}) {axis = 1 : i64, kind = "sum"}
// CHECK: %[[NEW:.*]] = arith.addf %[[OLD]], %[[SUM]]
// CHECK: scf.yield %[[MNEW]], %[[NEW]]
// CHECK: scf.for
// CHECK: "tile.load"
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: "tile.store"
// LogSoftmax: the same first loop, then x - m - log(l).
// CHECK-LABEL: func.func private @log_softmax_f32_
// CHECK: scf.for
// CHECK: loc("alpha"
// CHECK: math.log {{.*}} loc("log_sum"
// CHECK: scf.for
// CHECK-NOT: math.exp
// CHECK: "tile.store"
// A row that fits one block is read once: no loop.
// CHECK-LABEL: func.func private @softmax_f32_
// CHECK-SAME: tensor<2x1000xf32>
// CHECK-SAME: BLOCK_R = 1024
// CHECK-NOT: scf.for
// CHECK: "tile.store"
// A dynamic row: the loops run to the kernel's `vocab` argument.
// CHECK-LABEL: func.func private @softmax_f32_
// CHECK-SAME: tensor<3x?xf32, ["vocab"]>
// CHECK: %[[V:.*]] = "tile.symbol"() {symbol = "vocab"}
// CHECK: %[[UB:.*]] = arith.index_cast %[[V]] : i32 to index
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[UB]] step
// CHECK: loc("alpha"
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step

// TRITON-LABEL: def softmax_f32_
// TRITON: for k0 in range(0, 50257, BLOCK_R):
// TRITON: alpha = tl.exp(m_i - shift)
// TRITON: m_i, l_i = m_new, l_i * alpha + t3
// TRITON: for k0_1 in range(0, 50257, BLOCK_R):
// TRITON-LABEL: def softmax_f32_{{[0-9a-f]+}}(input_ptr, y_ptr, vocab, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr):
// TRITON: for k0 in range(0, vocab, BLOCK_R):
// TRITON: for k0_1 in range(0, vocab, BLOCK_R):
module attributes {tnx.symbols = {vocab = 128 : i64}} {
  func.func @main(%x: tensor<2x50257xf32>, %s: tensor<2x1000xf32>, %d: tensor<3x?xf32, ["vocab"]>) -> (tensor<2x50257xf32>, tensor<2x50257xf32>, tensor<2x1000xf32>, tensor<3x?xf32, ["vocab"]>) {
    %p = "tnx.softmax"(%x) {axis = 1 : i64} : (tensor<2x50257xf32>) -> tensor<2x50257xf32>
    %l = "tnx.log_softmax"(%x) {axis = 1 : i64} : (tensor<2x50257xf32>) -> tensor<2x50257xf32>
    %o = "tnx.softmax"(%s) {axis = 1 : i64} : (tensor<2x1000xf32>) -> tensor<2x1000xf32>
    %t = "tnx.softmax"(%d) {axis = 1 : i64} : (tensor<3x?xf32, ["vocab"]>) -> tensor<3x?xf32, ["vocab"]>
    return %p, %l, %o, %t : tensor<2x50257xf32>, tensor<2x50257xf32>, tensor<2x1000xf32>, tensor<3x?xf32, ["vocab"]>
  }
}
