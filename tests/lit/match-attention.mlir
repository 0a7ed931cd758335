// RUN: tritonnx-opt %s --pass-pipeline=match-attention | filecheck %s

// MatMul, scale, mask Add, Softmax over the keys, MatMul: one match. Every op gets the
// match's id and its code (the first MatMul anchors), the Softmax `tnx.attention`.
// CHECK-LABEL: func.func @attention
// CHECK: "tnx.mat_mul"{{.*}}tnx.attention_id = [[M:[0-9]+]] : i64, tnx.fusion = "anchor", tnx.why = "anchor: flash attention {{.*}}"
// CHECK: "tnx.mul"{{.*}}tnx.attention_id = [[M]] : i64, tnx.fusion = "attention"
// CHECK: "tnx.add"{{.*}}tnx.attention_id = [[M]] : i64, tnx.fusion = "attention"
// CHECK: "tnx.softmax"{{.*}}tnx.attention, tnx.attention_id = [[M]] : i64, tnx.fusion = "attention"
// CHECK: "tnx.mat_mul"{{.*}}tnx.attention_id = [[M]] : i64, tnx.fusion = "attention"
// CHECK-NOT: tnx.group
func.func @attention(%q: tensor<1x2x8x16xf32>, %kt: tensor<1x2x16x8xf32>, %v: tensor<1x2x8x16xf32>, %mask: tensor<1x1x1x8xf32>) -> tensor<1x2x8x16xf32> {
  %c = "tnx.constant"() {value = dense<0.25> : tensor<f32>} : () -> tensor<f32>
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<1x2x8x16xf32>, tensor<1x2x16x8xf32>) -> tensor<1x2x8x8xf32>
  %sc = "tnx.mul"(%s, %c) : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %m = "tnx.add"(%sc, %mask) : (tensor<1x2x8x8xf32>, tensor<1x1x1x8xf32>) -> tensor<1x2x8x8xf32>
  %p = "tnx.softmax"(%m) {axis = 3 : i64} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// Two attentions in one function are two matches.
// CHECK-LABEL: func.func @two_layers
// CHECK: "tnx.softmax"{{.*}}tnx.attention_id = 0 : i64
// CHECK: "tnx.softmax"{{.*}}tnx.attention_id = 1 : i64
func.func @two_layers(%q: tensor<8x16xf32>, %kt: tensor<16x8xf32>, %v: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%s) {axis = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %s2 = "tnx.mat_mul"(%o, %kt) : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %p2 = "tnx.softmax"(%s2) {axis = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o2 = "tnx.mat_mul"(%p2, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o2 : tensor<8x16xf32>
}

// A Softmax whose result is also returned is a near match: no id, a `tnx.why` saying why.
// CHECK-LABEL: func.func @probabilities_returned
// CHECK-NOT: tnx.attention_id
// CHECK: "tnx.softmax"{{.*}}tnx.why = "not fused as attention: the Softmax's result is not only the left operand of a MatMul"
func.func @probabilities_returned(%q: tensor<8x16xf32>, %kt: tensor<16x8xf32>, %v: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8x8xf32>) {
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%s) {axis = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o, %p : tensor<8x16xf32>, tensor<8x8xf32>
}

// A Softmax over the queries (not the last axis) is a near match.
// CHECK-LABEL: func.func @softmax_over_queries
// CHECK: "tnx.softmax"{{.*}}tnx.why = "not fused as attention: the Softmax is not over the keys (last) axis"
func.func @softmax_over_queries(%q: tensor<8x16xf32>, %kt: tensor<16x8xf32>, %v: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%s) {axis = 0 : i64} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o : tensor<8x16xf32>
}

// A head dimension over 256 does not fit one block: a near match.
// CHECK-LABEL: func.func @wide_head
// CHECK: "tnx.softmax"{{.*}}tnx.why = "not fused as attention: head dimension 512 > 256"
func.func @wide_head(%q: tensor<8x512xf32>, %kt: tensor<512x8xf32>, %v: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<8x512xf32>, tensor<512x8xf32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%s) {axis = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o : tensor<8x16xf32>
}

// A Softmax of anything but a MatMul's scores is not attention at all: nothing recorded.
// CHECK-LABEL: func.func @plain_softmax
// CHECK: "tnx.softmax"
// CHECK-NOT: tnx.why
// CHECK-NOT: tnx.attention
func.func @plain_softmax(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %p = "tnx.softmax"(%x) {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %p : tensor<4x8xf32>
}
