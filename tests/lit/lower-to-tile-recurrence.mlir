// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse | filecheck %s
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton --print-triton | filecheck %s --check-prefix=TRITON

// A GRU layer after its input projection (XW = X·W^T + Wb, [directions, seq*batch, 3*hidden]):
// one kernel, a program per block of batch rows and direction, all 4 time steps in one loop
// that carries h; h·R_g^T per gate via tile.dot over BLOCK_N = 16 (hidden 5 padded for tl.dot),
// R^T held in registers from before the loop; Y[t] stored each step, Y_h after the loop.
// CHECK-LABEL: func.func private @gru_f32_
// CHECK-SAME: tnx.block = {BLOCK_M = 16 : i64, BLOCK_N = 16 : i64}
// CHECK-SAME: tnx.grid = array<i64: 1, 2>
// CHECK-SAME: tnx.kind = "recurrence"
// CHECK: "tile.program_id"() {axis = 1 : i64}
// CHECK-COUNT-3: "tile.load"{{.*}} -> tensor<16x16xf32>
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[H:.*]] = %{{.*}}) -> (tensor<16x16xf32>)
// CHECK: "tile.load"
// CHECK: "tile.dot"(%[[H]], %{{.*}}, %{{.*}})
// CHECK: math.exp
// CHECK: "tile.dot"
// CHECK: "tile.dot"
// CHECK: "tile.store"
// CHECK: scf.yield
// CHECK: "tile.store"
// CHECK-NOT: "tile.store"
// CHECK: return
// Past a row's sequence length the state is carried and Y is zero: the loop selects on live.
// TRITON-LABEL: def gru_f32_
// TRITON: direction = tl.program_id(1)
// TRITON: seq_len = tl.load(sequence_lens_ptr
// TRITON: for k0 in range(0, 4, 1):
// TRITON: live = k0 < seq_len
// TRITON: tl.dot(h0, r,
// TRITON: tl.store(y_ptr + {{.*}}, tl.where(live, {{.*}}, 0.0), mask=mask)
// TRITON: h0 = tl.where(live,
// TRITON: tl.store(y_ptr + (direction * 10 + 80 + offs_b * 5 + offs_h), h0, mask=mask)
func.func @gru(%xw: tensor<2x8x15xf32>, %lens: tensor<2xi32>) -> tensor<5x2x2x5xf32> {
  %r = "tnx.constant"() {value = dense<0.25> : tensor<2x15x5xf32>} : () -> tensor<2x15x5xf32>
  %b = "tnx.constant"() {value = dense<0.5> : tensor<2x30xf32>} : () -> tensor<2x30xf32>
  %y = "tnx.gru"(%xw, %r, %b, %lens) {activation_alpha = array<f32: 0.0, 0.0, 0.0, 0.0>, activation_beta = array<f32: 0.0, 0.0, 0.0, 0.0>, activations = ["Sigmoid", "Tanh", "Sigmoid", "Tanh"], direction = "bidirectional", operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x8x15xf32>, tensor<2x15x5xf32>, tensor<2x30xf32>, tensor<2xi32>) -> tensor<5x2x2x5xf32>
  return %y : tensor<5x2x2x5xf32>
}
