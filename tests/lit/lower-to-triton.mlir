// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,tile,lower-to-tile,lower-to-triton | filecheck %s

// The printer tags each kernel with the file its Triton source goes to (content-addressed).
// CHECK: func.func private @[[K0:[a-z0-9_]+_[0-9a-f]+]]
// CHECK-SAME: tnx.source = "kernels/k_{{[0-9a-f]+}}.py"
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = "tnx.softmax"(%x) {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
