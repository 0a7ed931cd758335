// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline | filecheck %s

// Each group becomes a private kernel; @main calls it. The Reshape feeding the Gemm is
// cloned into the kernel as an index map, not given a kernel of its own. Two identical
// Relu groups (the Gemm result has two consumers) share one kernel.
// CHECK-LABEL: func.func @main
// Each call site names the ONNX nodes it computes (kernels are shared between sites).
// CHECK: %[[G:.*]] = call @kernel_0(%arg0, %{{.*}}) {tnx.nodes = ["tnx.gemm"]} : (tensor<2x2x2xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
// CHECK: %[[A:.*]] = call @kernel_1(%[[G]]) {tnx.nodes = ["[[RA:.*]]"]}
// CHECK: %[[B:.*]] = call @kernel_1(%[[G]]) {tnx.nodes = ["[[RB:.*]]"]}
// CHECK: return %[[A]], %[[B]]
// CHECK: func.func private @kernel_0({{.*}}) -> tensor<2x3xf32> attributes {tnx.kind = "gemm"
// CHECK-NEXT: "tnx.reshape"
// CHECK-NEXT: "tnx.gemm"
// CHECK: func.func private @kernel_1({{.*}}) -> tensor<2x3xf32> attributes {tnx.kind = "pointwise"
// CHECK-NOT: func.func private @kernel_2
func.func @main(%x: tensor<2x2x2xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<4x3xf32>} : () -> tensor<4x3xf32>
  %f = "tnx.reshape"(%x) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<2x2x2xf32>) -> tensor<2x4xf32>
  %g = "tnx.gemm"(%f, %w) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %a = "tnx.relu"(%g) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %b = "tnx.relu"(%g) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %a, %b : tensor<2x3xf32>, tensor<2x3xf32>
}
