// RUN: tritonnx-opt %s --pass-pipeline=merge-siblings | filecheck %s

// Q, K and V projections of one input, each with a constant bias Add: one MatMul over the
// concatenated [16, 24] weights, one Add of the concatenated biases, a Slice per former
// result (starts 0, 8, 16 along the last axis).
// CHECK-LABEL: func.func @qkv
// CHECK: "tnx.constant"{{.*}}tensor<16x24xf32>
// CHECK: "tnx.mat_mul"{{.*}}tnx.merged = "horizontal fusion of {{.*}}: one MatMul reads the input once"{{.*}} -> tensor<4x24xf32>
// CHECK: "tnx.add"{{.*}}(tensor<4x24xf32>, tensor<24xf32>) -> tensor<4x24xf32>
// CHECK: "tnx.slice"{{.*}}starts = array<i64: 0, 0>
// CHECK: "tnx.slice"{{.*}}starts = array<i64: 0, 8>
// CHECK: "tnx.slice"{{.*}}starts = array<i64: 0, 16>
// CHECK-NOT: "tnx.mat_mul"
func.func @qkv(%x: tensor<4x16xf32>) -> tensor<4x8xf32> {
  %wq = "tnx.constant"() {value = dense<0.5> : tensor<16x8xf32>} : () -> tensor<16x8xf32>
  %wk = "tnx.constant"() {value = dense<0.25> : tensor<16x8xf32>} : () -> tensor<16x8xf32>
  %wv = "tnx.constant"() {value = dense<0.125> : tensor<16x8xf32>} : () -> tensor<16x8xf32>
  %b = "tnx.constant"() {value = dense<1.0> : tensor<8xf32>} : () -> tensor<8xf32>
  %q = "tnx.mat_mul"(%x, %wq) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %qb = "tnx.add"(%q, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %k = "tnx.mat_mul"(%x, %wk) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %kb = "tnx.add"(%k, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %v = "tnx.mat_mul"(%x, %wv) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %vb = "tnx.add"(%v, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %s = "tnx.add"(%qb, %kb) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %y = "tnx.mul"(%s, %vb) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// A MatMul whose weight is not a constant (a run-time input) stays apart.
// CHECK-LABEL: func.func @runtime_weight
// CHECK-COUNT-2: "tnx.mat_mul"
// CHECK-NOT: tnx.merged
func.func @runtime_weight(%x: tensor<4x16xf32>, %w: tensor<16x8xf32>) -> tensor<4x8xf32> {
  %wq = "tnx.constant"() {value = dense<0.5> : tensor<16x8xf32>} : () -> tensor<16x8xf32>
  %q = "tnx.mat_mul"(%x, %wq) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %k = "tnx.mat_mul"(%x, %w) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %y = "tnx.add"(%q, %k) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// A sibling whose result is a graph output stays apart (its Slice would need a copy
// kernel); with one sibling left there is nothing to merge.
// CHECK-LABEL: func.func @returned_sibling
// CHECK-COUNT-2: "tnx.mat_mul"
// CHECK-NOT: tnx.merged
func.func @returned_sibling(%x: tensor<4x16xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %wq = "tnx.constant"() {value = dense<0.5> : tensor<16x8xf32>} : () -> tensor<16x8xf32>
  %wk = "tnx.constant"() {value = dense<0.25> : tensor<16x8xf32>} : () -> tensor<16x8xf32>
  %q = "tnx.mat_mul"(%x, %wq) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %k = "tnx.mat_mul"(%x, %wk) : (tensor<4x16xf32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %r = "tnx.relu"(%q) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r, %k : tensor<4x8xf32>, tensor<4x8xf32>
}

// Inception's 1x1 branches: one Conv over the weights concatenated along output channels,
// the Relu both branches apply once on the merged result, a channel Slice per branch (the
// Convs in the order of their input's uses: the later one first).
// CHECK-LABEL: func.func @conv_branches
// CHECK: "tnx.conv"{{.*}}tnx.merged = "horizontal fusion of {{.*}}: one Conv reads the input once"{{.*}} -> tensor<1x12x4x4xf32>
// CHECK-NEXT: "tnx.relu"{{.*}} -> tensor<1x12x4x4xf32>
// CHECK-NEXT: "tnx.slice"{{.*}}starts = array<i64: 0, 0, 0, 0>{{.*}} -> tensor<1x8x4x4xf32>
// CHECK-NEXT: "tnx.slice"{{.*}}starts = array<i64: 0, 8, 0, 0>{{.*}} -> tensor<1x4x4x4xf32>
// CHECK-NOT: "tnx.relu"
func.func @conv_branches(%x: tensor<1x4x4x4xf32>) -> tensor<1x12x4x4xf32> {
  %w1 = "tnx.constant"() {value = dense<0.5> : tensor<4x4x1x1xf32>} : () -> tensor<4x4x1x1xf32>
  %w2 = "tnx.constant"() {value = dense<0.25> : tensor<8x4x1x1xf32>} : () -> tensor<8x4x1x1xf32>
  %c1 = "tnx.conv"(%x, %w1) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %r1 = "tnx.relu"(%c1) : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %c2 = "tnx.conv"(%x, %w2) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x4x4xf32>
  %r2 = "tnx.relu"(%c2) : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %y = "tnx.concat"(%r1, %r2) {axis = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<1x8x4x4xf32>) -> tensor<1x12x4x4xf32>
  return %y : tensor<1x12x4x4xf32>
}

// Convs followed by different activations stay apart: the activation is part of what
// siblings must share.
// CHECK-LABEL: func.func @conv_different_activations
// CHECK-COUNT-2: "tnx.conv"
// CHECK-NOT: tnx.merged
func.func @conv_different_activations(%x: tensor<1x4x4x4xf32>) -> tensor<1x8x4x4xf32> {
  %w1 = "tnx.constant"() {value = dense<0.5> : tensor<4x4x1x1xf32>} : () -> tensor<4x4x1x1xf32>
  %w2 = "tnx.constant"() {value = dense<0.25> : tensor<4x4x1x1xf32>} : () -> tensor<4x4x1x1xf32>
  %c1 = "tnx.conv"(%x, %w1) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %r1 = "tnx.relu"(%c1) : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %c2 = "tnx.conv"(%x, %w2) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %r2 = "tnx.sigmoid"(%c2) : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %y = "tnx.concat"(%r1, %r2) {axis = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x8x4x4xf32>
  return %y : tensor<1x8x4x4xf32>
}
