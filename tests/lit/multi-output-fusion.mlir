// RUN: tritonnx-opt %s --pass-pipeline=multi-output | filecheck %s
// The input is partition's output (tnx.group, tnx.fusion, tnx.why), as in its dump.

// The Conv's result is read by the MaxPool and by a Sigmoid (times a constant) that is a
// graph output: the Sigmoid group becomes a second output of the Conv's kernel and moves
// up to it, with the constant it reads.
// CHECK-LABEL: func.func @second_output
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = 0
// CHECK-NEXT: "tnx.constant"{{.*}}tensor<1x2x1x1xf32>
// CHECK-NEXT: "tnx.sigmoid"{{.*}}tnx.fusion = "multi_output", tnx.group = 0 : i64, tnx.why = "second output of {{.*}}'s kernel: reads its result at the same index{{.*}}"
// CHECK-NEXT: "tnx.mul"{{.*}}tnx.fusion = "multi_output", tnx.group = 0
// CHECK-NEXT: "tnx.max_pool"{{.*}}tnx.group = 1
func.func @second_output(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, tnx.fusion = "anchor", tnx.group = 0 : i64, tnx.why = "anchor"} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%c) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>, tnx.fusion = "anchor", tnx.group = 1 : i64, tnx.why = "anchor"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  %k = "tnx.constant"() {value = dense<2.0> : tensor<1x2x1x1xf32>} : () -> tensor<1x2x1x1xf32>
  %s = "tnx.sigmoid"(%c) {tnx.fusion = "pointwise", tnx.group = 2 : i64, tnx.why = "pointwise root"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %m = "tnx.mul"(%s, %k) {tnx.fusion = "epilogue", tnx.group = 2 : i64, tnx.why = "epilogue"} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  return %p, %m : tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>
}

// Through a unit-step Slice (a merged Conv's channels 0..1): a second output over that
// window; the Slice stays where it is (before the host's last op).
// CHECK-LABEL: func.func @window
// CHECK: "tnx.conv"{{.*}}tnx.group = [[G:[0-9]+]]
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]] : i64, tnx.why = "second output of {{.*}}'s kernel: reads its result through a Slice at the same index{{.*}}"
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]]
// CHECK: "tnx.max_pool"{{.*}}tnx.fusion = "anchor"
func.func @window(%x: tensor<1x4x4x4xf32>) -> (tensor<1x4x2x2xf32>, tensor<1x2x4x4xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<6x4x1x1xf32>} : () -> tensor<6x4x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, tnx.fusion = "anchor", tnx.group = 0 : i64, tnx.why = "anchor"} : (tensor<1x4x4x4xf32>, tensor<6x4x1x1xf32>) -> tensor<1x6x4x4xf32>
  %a = "tnx.slice"(%c) {operandSegmentSizes = array<i32: 1, 0, 0, 0, 0>, starts = array<i64: 0, 0, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>) -> tensor<1x2x4x4xf32>
  %b = "tnx.slice"(%c) {operandSegmentSizes = array<i32: 1, 0, 0, 0, 0>, starts = array<i64: 0, 2, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x6x4x4xf32>) -> tensor<1x4x4x4xf32>
  %p = "tnx.max_pool"(%b) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>, tnx.fusion = "anchor", tnx.group = 1 : i64, tnx.why = "anchor"} : (tensor<1x4x4x4xf32>) -> tensor<1x4x2x2xf32>
  %k = "tnx.constant"() {value = dense<2.0> : tensor<1x2x1x1xf32>} : () -> tensor<1x2x1x1xf32>
  %m = "tnx.mul"(%a, %k) {tnx.fusion = "pointwise", tnx.group = 2 : i64, tnx.why = "pointwise root"} : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %r = "tnx.relu"(%m) {tnx.fusion = "epilogue", tnx.group = 2 : i64, tnx.why = "epilogue"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %p, %r : tensor<1x4x2x2xf32>, tensor<1x2x4x4xf32>
}

// A second output of several ops moves up in block order, not in the order they joined:
// the Shrink (a branch merged into the Round's group) comes before the Mul that reads it
// (fuzz seed 1178).
// CHECK-LABEL: func.func @block_order
// CHECK: "tnx.relu"{{.*}}tnx.group = [[G:[0-9]+]]
// CHECK-NEXT: "tnx.shrink"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]]
// CHECK-NEXT: "tnx.round"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]]
// CHECK-NEXT: "tnx.mul"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]]
func.func @block_order(%x: tensor<1x7xf32>) -> (tensor<1x7xf32>, tensor<1x7xf32>) {
  %a = "tnx.relu"(%x) {tnx.fusion = "pointwise", tnx.group = 0 : i64, tnx.why = "pointwise root"} : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %s = "tnx.shrink"(%a) {bias = 5.000000e-01 : f32, lambd = 5.000000e-01 : f32, tnx.fusion = "branch", tnx.group = 1 : i64, tnx.why = "branch"} : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %r = "tnx.round"(%a) {tnx.fusion = "pointwise", tnx.group = 1 : i64, tnx.why = "pointwise root"} : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %m = "tnx.mul"(%r, %s) {tnx.fusion = "epilogue", tnx.group = 1 : i64, tnx.why = "epilogue"} : (tensor<1x7xf32>, tensor<1x7xf32>) -> tensor<1x7xf32>
  return %a, %m : tensor<1x7xf32>, tensor<1x7xf32>
}

// Not a second output: a Relu that reads the Conv's result through a Transpose (the
// kernel holds the tile at another index).
// CHECK-LABEL: func.func @through_transpose
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 1
func.func @through_transpose(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, tnx.fusion = "anchor", tnx.group = 0 : i64, tnx.why = "anchor"} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %t = "tnx.transpose"(%c) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %r = "tnx.relu"(%t) {tnx.fusion = "pointwise", tnx.group = 1 : i64, tnx.why = "pointwise root"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%c) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>, tnx.fusion = "anchor", tnx.group = 2 : i64, tnx.why = "anchor"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  return %p, %r : tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>
}

// Not a second output: a Sigmoid of a Slice of a value nothing else reads (the kernel
// would store a value nobody needs).
// CHECK-LABEL: func.func @read_nowhere_else
// CHECK: "tnx.neg"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.sigmoid"{{.*}}tnx.fusion = "pointwise", tnx.group = 1
func.func @read_nowhere_else(%x: tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %n = "tnx.neg"(%x) {tnx.fusion = "pointwise", tnx.group = 0 : i64, tnx.why = "pointwise root"} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s = "tnx.slice"(%n) {operandSegmentSizes = array<i32: 1, 0, 0, 0, 0>, starts = array<i64: 0, 1, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32>
  %g = "tnx.sigmoid"(%s) {tnx.fusion = "pointwise", tnx.group = 1 : i64, tnx.why = "pointwise root"} : (tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %g : tensor<1x1x4x4xf32>
}
