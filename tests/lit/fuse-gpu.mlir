// RUN: tritonnx-opt %s --pass-pipeline='fuse{target=gpu}' | filecheck %s
// RUN: tritonnx-opt %s --pass-pipeline=fuse | filecheck %s --check-prefix=CPU

// Split-K on a GPU: a [1, 8192] x [8192, 256] Gemm has 8 output blocks of 16x32 for 132 SMs, so K is
// cut into 16 slices of 512 (index maps on A and W), one batched MatMul computes the
// partial products and a ReduceSum adds them, with the bias and the Relu as its epilogue.
// For the CPU interpreter the Gemm stays whole.
// CHECK-LABEL: func.func @classifier
// CHECK: "tnx.reshape"(%arg0){{.*}} -> tensor<1x16x512xf32>
// CHECK: "tnx.transpose"{{.*}} -> tensor<16x1x512xf32>
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "anchor", tnx.group = [[P:[0-9]+]] : i64, tnx.split_k = "split-K of {{.*}}: 1x256 outputs give 8 programs for 132 SMs; 16 slices of K = 8192"{{.*}} -> tensor<16x1x256xf32>
// CHECK: "tnx.reduce_sum"{{.*}}axes = array<i64: 0>{{.*}}tnx.group = [[R:[0-9]+]]
// CHECK: "tnx.add"{{.*}}tnx.group = [[R]]
// CHECK: "tnx.relu"{{.*}}tnx.group = [[R]]
// CPU: "tnx.gemm"
// CPU-NOT: "tnx.reduce_sum"
func.func @classifier(%x: tensor<1x8192xf32>) -> tensor<1x256xf32> {
  %w = "tnx.constant"() {value = dense<0.001> : tensor<256x8192xf32>} : () -> tensor<256x8192xf32>
  %b = "tnx.constant"() {value = dense<0.5> : tensor<256xf32>} : () -> tensor<256xf32>
  %g = "tnx.gemm"(%x, %w, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<1x8192xf32>, tensor<256x8192xf32>, tensor<256xf32>) -> tensor<1x256xf32>
  %y = "tnx.relu"(%g) : (tensor<1x256xf32>) -> tensor<1x256xf32>
  return %y : tensor<1x256xf32>
}
