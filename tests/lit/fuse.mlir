// RUN: tritonnx-opt %s --pass-pipeline=fuse | filecheck %s

// Conv anchors a group; the residual Add and the Relu after it join as its epilogue.
// The MaxPool starts a group of its own.
// CHECK-LABEL: func.func @conv_epilogue
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = 0
// CHECK: "tnx.add"{{.*}}tnx.fusion = "epilogue of {{.*}}: sole consumer, same size", tnx.group = 0
// CHECK: "tnx.relu"{{.*}}tnx.group = 0
// CHECK: "tnx.max_pool"{{.*}}tnx.fusion = "anchor", tnx.group = 1
func.func @conv_epilogue(%x: tensor<1x2x4x4xf32>, %r: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %a = "tnx.add"(%c, %r) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = "tnx.relu"(%a) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%y) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  return %p : tensor<1x2x2x2xf32>
}

// A value with two consumers is not fused into either: each Relu is its own group.
// CHECK-LABEL: func.func @multi_use
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise root{{.*}}", tnx.group = 0
// CHECK: "tnx.sigmoid"{{.*}}tnx.fusion = "epilogue of {{.*}}", tnx.group = 0
// CHECK: "tnx.add"{{.*}}tnx.group = 1
func.func @multi_use(%x: tensor<8xf32>) -> tensor<8xf32> {
  %a = "tnx.relu"(%x) : (tensor<8xf32>) -> tensor<8xf32>
  %b = "tnx.sigmoid"(%a) : (tensor<8xf32>) -> tensor<8xf32>
  %c = "tnx.add"(%b, %x) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %d = "tnx.add"(%c, %c) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %d : tensor<8xf32>
}

// A Reshape of a kernel's result that is only returned joins the kernel: it is stored in
// place. A Transpose in the same position needs a copy kernel.
// CHECK-LABEL: func.func @output_views
// CHECK: "tnx.softmax"{{.*}}tnx.group = 0
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "reshape of the group's result: stored in place (same element order)", tnx.group = 0
// CHECK: "tnx.relu"{{.*}}tnx.group = 1
// CHECK: "tnx.transpose"{{.*}}tnx.fusion = "view that is a graph output: materialized by a copy kernel", tnx.group = 2
func.func @output_views(%x: tensor<2x3xf32>) -> (tensor<6xf32>, tensor<3x2xf32>) {
  %s = "tnx.softmax"(%x) {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %r = "tnx.reshape"(%s) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<2x3xf32>) -> tensor<6xf32>
  %a = "tnx.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %t = "tnx.transpose"(%a) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %r, %t : tensor<6xf32>, tensor<3x2xf32>
}

// GroupNormalization's epilogue reaches its MeanVarianceNormalization through a Reshape:
// one kernel. An LRN is a stencil and starts a group of its own.
// CHECK-LABEL: func.func @through_reshape
// CHECK: "tnx.mean_variance_normalization"{{.*}}tnx.group = 0
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "reshape of {{.*}}'s result: same element order", tnx.group = 0
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue of {{.*}} through a reshape: sole consumer, same size", tnx.group = 0
// CHECK: "tnx.lrn"{{.*}}tnx.fusion = "stencil: {{.*}}", tnx.group = 1
func.func @through_reshape(%x: tensor<1x2x6xf32>, %s: tensor<1x4x3xf32>) -> tensor<1x4x3xf32> {
  %n = "tnx.mean_variance_normalization"(%x) {axes = array<i64: 2>, epsilon = 1.0e-5 : f32} : (tensor<1x2x6xf32>) -> tensor<1x2x6xf32>
  %r = "tnx.reshape"(%n) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<1x2x6xf32>) -> tensor<1x4x3xf32>
  %m = "tnx.mul"(%r, %s) : (tensor<1x4x3xf32>, tensor<1x4x3xf32>) -> tensor<1x4x3xf32>
  %l = "tnx.lrn"(%m) {alpha = 1.0e-4 : f32, beta = 0.75 : f32, bias = 1.0 : f32, size = 3 : i64} : (tensor<1x4x3xf32>) -> tensor<1x4x3xf32>
  return %l : tensor<1x4x3xf32>
}

// A pointwise group read only by a Conv (BatchNormalization folded to Mul/Add, then Relu,
// as DenseNet's pre-activation blocks have) becomes the Conv's prologue: computed on its
// loads, never stored. The group is read through a Transpose, an index map that joins too.
// CHECK-LABEL: func.func @prologue
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "prologue of {{.*}}: computed on its loads (256 input bytes for 256 output bytes, no round trip through memory)", tnx.group = [[G:[0-9]+]]
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "prologue of {{.*}}", tnx.group = [[G]]
// CHECK: "tnx.transpose"{{.*}}tnx.fusion = "index map between the prologue and {{.*}}", tnx.group = [[G]]
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = [[G]]
func.func @prologue(%x: tensor<1x4x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %s = "tnx.constant"() {value = dense<0.5> : tensor<1x4x1x1xf32>} : () -> tensor<1x4x1x1xf32>
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x4x1x1xf32>} : () -> tensor<2x4x1x1xf32>
  %m = "tnx.mul"(%x, %s) : (tensor<1x4x4x4xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %r = "tnx.relu"(%m) : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %t = "tnx.transpose"(%r) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %c = "tnx.conv"(%t, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<2x4x1x1xf32>) -> tensor<1x2x4x4xf32>
  return %c : tensor<1x2x4x4xf32>
}

// Not prologues: a pointwise value with a second reader (here the graph output), and a
// group whose inputs weigh more than twice its output (three full-size tensors in, one
// out: recomputing it on every re-read of a tile would move more than storing it once).
// CHECK-LABEL: func.func @no_prologue
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise root{{.*}}", tnx.group = 0
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 1
// CHECK: "tnx.add"{{.*}}tnx.fusion = "pointwise root{{.*}}", tnx.group = 2
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue of {{.*}}", tnx.group = 2
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 3
func.func @no_prologue(%x: tensor<4x8xf32>, %y: tensor<64x8xf32>, %z: tensor<64x8xf32>, %v: tensor<64x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<64x8xf32>) {
  %r = "tnx.relu"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = "tnx.softmax"(%r) {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = "tnx.add"(%y, %z) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %m = "tnx.mul"(%a, %v) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %u = "tnx.softmax"(%m) {axis = 1 : i64} : (tensor<64x8xf32>) -> tensor<64x8xf32>
  return %r, %s, %u : tensor<4x8xf32>, tensor<4x8xf32>, tensor<64x8xf32>
}
