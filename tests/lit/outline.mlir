// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline | filecheck %s

// Each group becomes a private kernel; @main calls it. The Reshape feeding the Gemm is
// cloned into the kernel as an index map, not given a kernel of its own. The two Relus of
// the Gemm's result are second outputs of its kernel (multi-output fusion): one call with
// two results, and the Gemm's result itself, read by nothing else, is not an output.
// CHECK-LABEL: func.func @main
// A kernel is named for what it computes, its sizes and dtype, then a digest of its body.
// Each call site names the ONNX nodes it computes (kernels are shared between sites).
// CHECK: %[[G:.*]]:2 = call @[[K0:gemm_relu_2x3x4_f32_[0-9a-f]+]](%arg0, %{{.*}}) {tnx.nodes = ["tnx.gemm", "tnx.relu", "tnx.relu"]} : (tensor<2x2x2xf32>, tensor<4x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>)
// Two identical Relu groups of an input share one kernel.
// CHECK: %[[C:.*]] = call @[[K1:relu_f32_[0-9a-f]+]](%arg1) {tnx.nodes = ["[[RC:.*]]"]}
// CHECK: %[[D:.*]] = call @[[K1]](%arg1) {tnx.nodes = ["[[RD:.*]]"]}
// CHECK: return %[[G]]#0, %[[G]]#1, %[[C]], %[[D]]
// CHECK: func.func private @[[K0]]({{.*}}) -> (tensor<2x3xf32>, tensor<2x3xf32>) attributes {tnx.kind = "gemm"
// CHECK-NEXT: "tnx.reshape"
// CHECK-NEXT: "tnx.gemm"
// CHECK: return %{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<2x3xf32>
// CHECK: func.func private @[[K1]]({{.*}}) -> tensor<3xf32> attributes {tnx.kind = "pointwise"
// CHECK-NOT: func.func private 
func.func @main(%x: tensor<2x2x2xf32>, %y: tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<4x3xf32>} : () -> tensor<4x3xf32>
  %f = "tnx.reshape"(%x) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<2x2x2xf32>) -> tensor<2x4xf32>
  %g = "tnx.gemm"(%f, %w) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %a = "tnx.relu"(%g) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %b = "tnx.relu"(%g) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = "tnx.relu"(%y) : (tensor<3xf32>) -> tensor<3xf32>
  %d = "tnx.relu"(%y) : (tensor<3xf32>) -> tensor<3xf32>
  return %a, %b, %c, %d : tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>
}
