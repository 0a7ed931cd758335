// RUN: tritonnx-opt %s --pass-pipeline='split-k{target=gpu}' | filecheck %s
// RUN: tritonnx-opt %s --pass-pipeline=split-k | filecheck %s --check-prefix=CPU

// A [1, 8192] x [8192, 256] Gemm has 8 output blocks of 16x32 for 132 SMs: K is cut into
// 16 slices of 512 (a Reshape and Transpose of each operand), one batched MatMul computes
// the partial products, a ReduceSum adds them and the bias follows as an Add.
// CHECK-LABEL: func.func @classifier
// CHECK: "tnx.reshape"(%arg0){{.*}} -> tensor<1x16x512xf32>
// CHECK: "tnx.transpose"{{.*}}perm = array<i64: 1, 0, 2>{{.*}} -> tensor<16x1x512xf32>
// CHECK: "tnx.reshape"{{.*}} -> tensor<256x16x512xf32>
// CHECK: "tnx.transpose"{{.*}}perm = array<i64: 1, 2, 0>{{.*}} -> tensor<16x512x256xf32>
// CHECK: "tnx.mat_mul"{{.*}}tnx.split_k = "split-K of {{.*}}: 1x256 outputs give 8 programs for 132 SMs; 16 slices of K = 8192"{{.*}} -> tensor<16x1x256xf32>
// CHECK: "tnx.reduce_sum"{{.*}}axes = array<i64: 0>{{.*}} -> tensor<1x256xf32>
// CHECK: "tnx.add"
// CHECK-NOT: "tnx.gemm"
// For the CPU interpreter the pass does nothing.
// CPU-LABEL: func.func @classifier
// CPU: "tnx.gemm"
// CPU-NOT: "tnx.reduce_sum"
func.func @classifier(%x: tensor<1x8192xf32>) -> tensor<1x256xf32> {
  %w = "tnx.constant"() {value = dense<0.001> : tensor<256x8192xf32>} : () -> tensor<256x8192xf32>
  %b = "tnx.constant"() {value = dense<0.5> : tensor<256xf32>} : () -> tensor<256xf32>
  %g = "tnx.gemm"(%x, %w, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<1x8192xf32>, tensor<256x8192xf32>, tensor<256xf32>) -> tensor<1x256xf32>
  return %g : tensor<1x256xf32>
}

// alpha other than 1 scales the sum: a Mul by a constant after the ReduceSum.
// CHECK-LABEL: func.func @alpha
// CHECK: "tnx.reduce_sum"
// CHECK-NEXT: "tnx.constant"
// CHECK-NEXT: "tnx.mul"
func.func @alpha(%x: tensor<1x8192xf32>, %w: tensor<8192x64xf32>) -> tensor<1x64xf32> {
  %g = "tnx.gemm"(%x, %w) {alpha = 2.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x8192xf32>, tensor<8192x64xf32>) -> tensor<1x64xf32>
  return %g : tensor<1x64xf32>
}

// A short K (under 8192) stays whole: the tile pass shrinks blocks instead.
// CHECK-LABEL: func.func @short_k
// CHECK: "tnx.mat_mul"{{.*}} -> tensor<1x256xf32>
// CHECK-NOT: tnx.split_k
func.func @short_k(%x: tensor<1x4096xf32>, %w: tensor<4096x256xf32>) -> tensor<1x256xf32> {
  %y = "tnx.mat_mul"(%x, %w) : (tensor<1x4096xf32>, tensor<4096x256xf32>) -> tensor<1x256xf32>
  return %y : tensor<1x256xf32>
}

// An output with enough blocks for the SMs ([64, 1024]: 128 blocks) stays whole.
// CHECK-LABEL: func.func @wide
// CHECK: "tnx.mat_mul"{{.*}} -> tensor<64x1024xf32>
// CHECK-NOT: tnx.split_k
func.func @wide(%x: tensor<64x8192xf32>, %w: tensor<8192x1024xf32>) -> tensor<64x1024xf32> {
  %y = "tnx.mat_mul"(%x, %w) : (tensor<64x8192xf32>, tensor<8192x1024xf32>) -> tensor<64x1024xf32>
  return %y : tensor<64x1024xf32>
}
