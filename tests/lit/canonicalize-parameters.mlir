// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize | filecheck %s

// Constant parameter operands become attributes in a normalized, full-rank form.
// CHECK-LABEL: func.func @slice
// CHECK: "tnx.slice"(%arg0) {{{.*}}starts = array<i64: 1, 8>, steps = array<i64: 2, -2>}
func.func @slice(%x: tensor<4x10xf32>) -> tensor<2x4xf32> {
  %s = "tnx.constant"() {value = dense<[1, 8]> : tensor<2xi64>} : () -> tensor<2xi64>
  %e = "tnx.constant"() {value = dense<[4, 0]> : tensor<2xi64>} : () -> tensor<2xi64>
  %a = "tnx.constant"() {value = dense<[0, 1]> : tensor<2xi64>} : () -> tensor<2xi64>
  %t = "tnx.constant"() {value = dense<[2, -2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %y = "tnx.slice"(%x, %s, %e, %a, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<4x10xf32>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// CHECK-LABEL: func.func @reduce_axes
// CHECK: "tnx.reduce_sum"(%arg0) {axes = array<i64: 0, 2>, keepdims = 0 : i64
func.func @reduce_axes(%x: tensor<2x3x4xf32>) -> tensor<3xf32> {
  %a = "tnx.constant"() {value = dense<[-1, 0]> : tensor<2xi64>} : () -> tensor<2xi64>
  %y = "tnx.reduce_sum"(%x, %a) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64, operandSegmentSizes = array<i32: 1, 1>} : (tensor<2x3x4xf32>, tensor<2xi64>) -> tensor<3xf32>
  return %y : tensor<3xf32>
}

// LayerNormalization decomposes into MeanVarianceNormalization and its affine epilogue.
// CHECK-LABEL: func.func @layer_norm
// CHECK: %[[N:.*]] = "tnx.mean_variance_normalization"(%arg0) {axes = array<i64: 1>, epsilon = {{.*}}}
// CHECK: %[[M:.*]] = "tnx.mul"(%[[N]], %arg1)
// CHECK: "tnx.add"(%[[M]], %arg2)
func.func @layer_norm(%x: tensor<2x8xf32>, %s: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
  %y = "tnx.layer_normalization"(%x, %s, %b) {axis = -1 : i64, epsilon = 1.0e-5 : f32, stash_type = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<2x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// Einsum for attention scores: a batched MatMul between views.
// CHECK-LABEL: func.func @einsum
// CHECK: %[[K:.*]] = "tnx.transpose"(%arg1) {perm = array<i64: 0, 2, 1>}
// CHECK-NEXT: %[[S:.*]] = "tnx.mat_mul"(%arg0, %[[K]])
// CHECK-SAME: (tensor<2x4x5xf32>, tensor<2x5x6xf32>) -> tensor<2x4x6xf32>
// CHECK-NEXT: return %[[S]]
func.func @einsum(%q: tensor<2x4x5xf32>, %k: tensor<2x6x5xf32>) -> tensor<2x4x6xf32> {
  %y = "tnx.einsum"(%q, %k) {equation = "bid,bjd->bij", operandSegmentSizes = array<i32: 1, 1>} : (tensor<2x4x5xf32>, tensor<2x6x5xf32>) -> tensor<2x4x6xf32>
  return %y : tensor<2x4x6xf32>
}

// With two batch letters (batch, heads) the batch dims stay dims: a 4-D MatMul, no reshape,
// so the attention pattern of the fuse pass sees an Einsum attention as it sees MatMuls.
// CHECK-LABEL: func.func @einsum_heads
// CHECK: %[[K:.*]] = "tnx.transpose"(%arg1) {perm = array<i64: 0, 1, 3, 2>}
// CHECK-NEXT: %[[S:.*]] = "tnx.mat_mul"(%arg0, %[[K]])
// CHECK-SAME: (tensor<2x3x4x5xf32>, tensor<2x3x5x6xf32>) -> tensor<2x3x4x6xf32>
// CHECK-NEXT: return %[[S]]
func.func @einsum_heads(%q: tensor<2x3x4x5xf32>, %k: tensor<2x3x6x5xf32>) -> tensor<2x3x4x6xf32> {
  %y = "tnx.einsum"(%q, %k) {equation = "bhqd,bhkd->bhqk", operandSegmentSizes = array<i32: 1, 1>} : (tensor<2x3x4x5xf32>, tensor<2x3x6x5xf32>) -> tensor<2x3x4x6xf32>
  return %y : tensor<2x3x4x6xf32>
}
