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
