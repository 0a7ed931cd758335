// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile | filecheck %s

// A multi-output kernel: the Conv's result, which the MaxPool reads, and the Mul + Relu
// of its channels 4..5 (a Slice), a graph output. @main allocates both outputs and passes
// them to one call; the kernel stores the Conv's tile, then the second output over its
// window: lanes whose channel lies in [4, 6), at channel - 4.
// CHECK-LABEL: func.func @main
// CHECK: %[[C:.*]] = "tnx.empty"() : () -> tensor<1x6x4x4xf32>
// CHECK: %[[R:.*]] = "tnx.empty"() : () -> tensor<1x2x4x4xf32>
// CHECK: call @[[K0:[a-z0-9_]+_[0-9a-f]+]](%arg0, %{{.*}}, %{{.*}}, %[[C]], %[[R]]) {tnx.nodes = ["tnx.conv", "tnx.mul", "tnx.relu"]}
// CHECK: call @[[K1:[a-z0-9_]+_[0-9a-f]+]](%[[C]], %{{.*}})
// CHECK: return %{{.*}}, %[[R]]
// CHECK: func.func private @[[K0]]({{.*}}, %[[OUT0:.*]]: tensor<1x6x4x4xf32>, %[[OUT1:.*]]: tensor<1x2x4x4xf32>)
// CHECK-SAME: tnx.num_outputs = 2
// CHECK: "tile.dot"
// CHECK: "tile.store"(%[[OUT0]], %{{.*}}, %[[TILE:[0-9]+]], %{{.*}})
// CHECK: arith.subi
// CHECK: arith.cmpi sge
// CHECK: arith.cmpi slt
// The Mul reads the Conv's tile the kernel holds: no second load, no recomputation.
// CHECK: arith.mulf %[[TILE]], %{{.*}}
// CHECK: arith.maximumf
// CHECK: "tile.store"(%[[OUT1]]
// CHECK: func.func private @[[K1]]
func.func @main(%x: tensor<1x4x4x4xf32>) -> (tensor<1x4x2x2xf32>, tensor<1x2x4x4xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<6x4x1x1xf32>} : () -> tensor<6x4x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<6x4x1x1xf32>) -> tensor<1x6x4x4xf32>
  %s1 = "tnx.slice"(%c) {operandSegmentSizes = array<i32: 1, 0, 0, 0, 0>, starts = array<i64: 0, 0, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>) -> tensor<1x4x4x4xf32>
  %p = "tnx.max_pool"(%s1) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x4x4x4xf32>) -> tensor<1x4x2x2xf32>
  %s2 = "tnx.slice"(%c) {operandSegmentSizes = array<i32: 1, 0, 0, 0, 0>, starts = array<i64: 0, 4, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>) -> tensor<1x2x4x4xf32>
  %k = "tnx.constant"() {value = dense<[[[[2.0]], [[3.0]]]]> : tensor<1x2x1x1xf32>} : () -> tensor<1x2x1x1xf32>
  %m = "tnx.mul"(%s2, %k) : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %r = "tnx.relu"(%m) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %p, %r : tensor<1x4x2x2xf32>, tensor<1x2x4x4xf32>
}
