// RUN: tritonnx-opt %s --pass-pipeline='fuse,outline,choose-blocks{target=gpu}' | filecheck %s

// GPU pool programs hold at most 2048 lanes. A 3x3 MaxPool takes 16 window lanes, so 128
// outputs a program; ResNet-50's GlobalAveragePool (7x7 = 49 taps in 64 lanes) takes 32
// outputs a program: 64 programs for its 2048 channels (and a fourth of the code to compile).
// CHECK-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// CHECK-SAME: tnx.block = {BLOCK_P = 128 : i64, BLOCK_R = 16 : i64}
// CHECK-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// CHECK-SAME: tnx.block = {BLOCK_P = 32 : i64, BLOCK_R = 64 : i64}
// CHECK-SAME: tnx.grid = array<i64: 64>
func.func @main(%x: tensor<1x16x14x14xf32>, %y: tensor<1x2048x7x7xf32>) -> (tensor<1x16x7x7xf32>, tensor<1x2048x1x1xf32>) {
  %p = "tnx.max_pool"(%x) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x16x14x14xf32>) -> tensor<1x16x7x7xf32>
  %g = "tnx.global_average_pool"(%y) : (tensor<1x2048x7x7xf32>) -> tensor<1x2048x1x1xf32>
  return %p, %g : tensor<1x16x7x7xf32>, tensor<1x2048x1x1xf32>
}
