// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize,fuse,outline,choose-blocks,lower-to-tile | filecheck %s

// Index width per kernel: a kernel that reads a tensor of 2^31 elements or more (here an
// int8 [2, 2^30+32] input, sliced) indexes in i64, from the program id and range on; the
// same slice of a small tensor stays i32. The width is recorded as tnx.index_bits.
// CHECK-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}(%{{.*}}: tensor<2x1073741856xi8>
// CHECK-SAME: tnx.index_bits = 64
// CHECK: "tile.program_id"() {axis = 0 : i64} : () -> i64
// CHECK: "tile.range"() {block = "BLOCK", end = 64 : i64, start = 0 : i64} : () -> tensor<64xi64>
// CHECK: arith.constant dense<1073741856> : tensor<64xi64>
// CHECK: "tile.load"(%{{.*}}, %{{.*}}, %{{.*}}) {{.*}} : (tensor<2x1073741856xi8>, tensor<64xi64>, tensor<64xi1>)
// CHECK-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}(%{{.*}}: tensor<2x64xi8>
// CHECK-SAME: tnx.index_bits = 32
// CHECK: "tile.program_id"() {axis = 0 : i64} : () -> i32
// CHECK: "tile.range"() {block = "BLOCK", end = 64 : i64, start = 0 : i64} : () -> tensor<64xi32>
// CHECK: "tile.load"(%{{.*}}, %{{.*}}, %{{.*}}) {{.*}} : (tensor<2x64xi8>, tensor<64xi32>, tensor<64xi1>)
func.func @main(%x: tensor<2x1073741856xi8>, %s: tensor<2x64xi8>) -> (tensor<2x32xi8>, tensor<2x32xi8>) {
  %starts = "tnx.constant"() {value = dense<[0, 1073741824]> : tensor<2xi64>} : () -> tensor<2xi64>
  %ends = "tnx.constant"() {value = dense<[2, 1073741856]> : tensor<2xi64>} : () -> tensor<2xi64>
  %axes = "tnx.constant"() {value = dense<[0, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %y = "tnx.slice"(%x, %starts, %ends, %axes) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x1073741856xi8>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<2x32xi8>
  %s_starts = "tnx.constant"() {value = dense<[0, 32]> : tensor<2xi64>} : () -> tensor<2xi64>
  %s_ends = "tnx.constant"() {value = dense<[2, 64]> : tensor<2xi64>} : () -> tensor<2xi64>
  %z = "tnx.slice"(%s, %s_starts, %s_ends, %axes) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x64xi8>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<2x32xi8>
  return %y, %z : tensor<2x32xi8>, tensor<2x32xi8>
}
