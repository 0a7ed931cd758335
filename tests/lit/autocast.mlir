// RUN: tritonnx-opt %s --pass-pipeline='autocast{precision=fp16}' | filecheck %s --check-prefix=FP16
// RUN: tritonnx-opt %s --pass-pipeline='autocast{precision=bf16}' | filecheck %s --check-prefix=BF16
// RUN: tritonnx-opt %s --pass-pipeline='autocast{precision=tf32}' | filecheck %s --check-prefix=TF32

// fp16: the fp32 input is cast once at entry, weights and intermediates are f16, the
// output is cast back: the function keeps its fp32 signature. The int64 path is untouched.
// FP16: module attributes {tnx.precision = "fp16"}
// FP16: func.func @main(%arg0: tensor<2x4xf32>, %arg1: tensor<2xi64>) -> (tensor<2x3xf32>, tensor<2xi64>)
// FP16: "tnx.cast"(%arg0) {to = 10 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf16>
// FP16: "tnx.constant"() {{.*}} -> tensor<4x3xf16>
// FP16: "tnx.mat_mul"{{.*}} : (tensor<2x4xf16>, tensor<4x3xf16>) -> tensor<2x3xf16>
// FP16: "tnx.relu"{{.*}} -> tensor<2x3xf16>
// FP16: "tnx.add"{{.*}} -> tensor<2xi64>
// FP16: "tnx.cast"{{.*}}to = 1 : i64{{.*}} : (tensor<2x3xf16>) -> tensor<2x3xf32>
// BF16: "tnx.cast"(%arg0) {to = 16 : i64} : (tensor<2x4xf32>) -> tensor<2x4xbf16>
// BF16: "tnx.mat_mul"{{.*}} -> tensor<2x3xbf16>
// TF32: module attributes {tnx.precision = "tf32"}
// TF32: "tnx.mat_mul"{{.*}} -> tensor<2x3xf32>
func.func @main(%x: tensor<2x4xf32>, %i: tensor<2xi64>) -> (tensor<2x3xf32>, tensor<2xi64>) {
  %w = "tnx.constant"() {value = dense<[[0.5, 1.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.5, 0.25], [3.0, 2.0, 1.0]]> : tensor<4x3xf32>} : () -> tensor<4x3xf32>
  %m = "tnx.mat_mul"(%x, %w) : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
  %r = "tnx.relu"(%m) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %j = "tnx.add"(%i, %i) : (tensor<2xi64>, tensor<2xi64>) -> tensor<2xi64>
  return %r, %j : tensor<2x3xf32>, tensor<2xi64>
}
