// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse --mlir-print-debuginfo | filecheck %s
// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton --print-triton | filecheck %s --check-prefix=TRITON

// What makes the printed kernel readable is in the tile IR: the arguments' locations name
// the pointers, block sizes are named constexprs (`tile.constexpr`, `tile.range {block}`),
// and values carry the names the template gives them as NameLocs.
// CHECK-LABEL: func.func private @conv2d_3x3_s1_f32_
// CHECK-SAME: loc("x_ptr"
// CHECK-SAME: loc("w_ptr"
// CHECK-SAME: loc("y_ptr"
// CHECK: "tile.constexpr"() {name = "BLOCK_M", value = {{[0-9]+}} : i64}
// CHECK: "tile.range"() {block = "BLOCK_M", end = {{[0-9]+}} : i64, start = 0 : i64}
// CHECK: loc("offs_m"(
// The K loop steps by the BLOCK_K constexpr, so every block size the tile pass offers prints the same source.
// CHECK: %[[STEP:.*]] = "tile.constexpr"() {name = "BLOCK_K", {{.*}}} : () -> index
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STEP]]
// CHECK: loc("ci"(
// CHECK: loc("kh"(
// CHECK: loc("ih"(
// CHECK: loc("mask_x"(
// The weight offsets are the output channel times K plus K: the (ci, kh, kw) the taps
// were split into fold back into the K index.
// TRITON: w = tl.load(w_ptr + (offs_n * 36 + k_b), mask=mask_b, other=0.0)
// A 1x1 Conv without padding cannot read outside its input: no bounds check on ih, iw.
// TRITON-LABEL: def conv2d_1x1_s1_f32_
// TRITON-NOT: >= 0
// TRITON: tl.dot(
func.func @main(%x: tensor<1x4x6x6xf32>) -> (tensor<1x8x6x6xf32>, tensor<1x8x6x6xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<8x4x3x3xf32>} : () -> tensor<8x4x3x3xf32>
  %c = "tnx.conv"(%x, %w) {kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x6x6xf32>, tensor<8x4x3x3xf32>) -> tensor<1x8x6x6xf32>
  %w1 = "tnx.constant"() {value = dense<0.25> : tensor<8x4x1x1xf32>} : () -> tensor<8x4x1x1xf32>
  %d = "tnx.conv"(%x, %w1) {kernel_shape = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x6x6xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x6x6xf32>
  return %c, %d : tensor<1x8x6x6xf32>, tensor<1x8x6x6xf32>
}
