// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize | filecheck %s

// Identity and Dropout disappear; a Shape of a static tensor folds into a constant and the
// Reshape it feeds becomes a shape-only tnx.reshape.
// CHECK-LABEL: func.func @views
// CHECK-NOT: tnx.identity
// CHECK-NOT: tnx.dropout
// CHECK-NOT: tnx.shape
// CHECK: %[[R:.*]] = "tnx.reshape"(%arg0) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
// CHECK: return %[[R]]
func.func @views(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = "tnx.identity"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "tnx.dropout"(%0) {operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %s = "tnx.constant"() {value = dense<[3, 2]> : tensor<2xi64>} : () -> tensor<2xi64>
  %2 = "tnx.reshape"(%1, %s) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>
  return %2 : tensor<3x2xf32>
}

// BatchNormalization after a single-use Conv folds into new Conv weights and bias:
// scale = 2 / sqrt(3 + 1) = 1, so W' = W and B' = 0 + (1 - 1) * 1 = 0.
// CHECK-LABEL: func.func @fold_bn
// CHECK-NOT: tnx.batch_normalization
// CHECK: "tnx.conv"(%arg0, %{{.*}}, %{{.*}}) {{{.*}}tnx.folded = "BatchNormalization{{.*}}"
func.func @fold_bn(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %g = "tnx.constant"() {value = dense<2.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %b = "tnx.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "tnx.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "tnx.constant"() {value = dense<3.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %y = "tnx.batch_normalization"(%c, %g, %b, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// BatchNormalization with no Conv before it decomposes into Mul and Add.
// CHECK-LABEL: func.func @decompose_bn
// CHECK: "tnx.mul"
// CHECK: "tnx.add"
func.func @decompose_bn(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %g = "tnx.constant"() {value = dense<2.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %b = "tnx.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "tnx.constant"() {value = dense<1.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "tnx.constant"() {value = dense<3.0> : tensor<2xf32>} : () -> tensor<2xf32>
  %y = "tnx.batch_normalization"(%x, %g, %b, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

// The LayerNormalization older exporters spell out becomes a MeanVarianceNormalization
// over the trailing axis; the scale Mul and bias Add stay, to fuse as its epilogue.
// CHECK-LABEL: func.func @decomposed_layer_norm
// CHECK: %[[N:.*]] = "tnx.mean_variance_normalization"(%arg0) {axes = array<i64: 1>, epsilon = 9.99999974E-6 : f32} : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK-NOT: tnx.reduce_mean
// CHECK-NOT: tnx.sqrt
// CHECK: "tnx.mul"(%[[N]]
func.func @decomposed_layer_norm(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %axes = "tnx.constant"() {value = dense<[-1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %two = "tnx.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %eps = "tnx.constant"() {value = dense<1.0e-5> : tensor<f32>} : () -> tensor<f32>
  %g = "tnx.constant"() {value = dense<0.5> : tensor<8xf32>} : () -> tensor<8xf32>
  %mean = "tnx.reduce_mean"(%x, %axes) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64, operandSegmentSizes = array<i32: 1, 1>} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
  %d = "tnx.sub"(%x, %mean) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %p = "tnx.pow"(%d, %two) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %var = "tnx.reduce_mean"(%p, %axes) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64, operandSegmentSizes = array<i32: 1, 1>} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x1xf32>
  %ve = "tnx.add"(%var, %eps) : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %s = "tnx.sqrt"(%ve) : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %n = "tnx.div"(%d, %s) : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y = "tnx.mul"(%n, %g) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
