// RUN: tritonnx-opt %s --pass-pipeline=partition | filecheck %s

// A Conv anchors a group, the residual Add and the Relu join as its epilogue; the MaxPool
// that reads the Relu anchors a group of its own.
// CHECK-LABEL: func.func @epilogue
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = 0 : i64, tnx.why = "anchor"
// CHECK: "tnx.add"{{.*}}tnx.fusion = "epilogue", tnx.group = 0 : i64, tnx.why = "epilogue of {{.*}}: sole consumer, same size"
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "epilogue", tnx.group = 0
// CHECK: "tnx.max_pool"{{.*}}tnx.fusion = "anchor", tnx.group = 1
func.func @epilogue(%x: tensor<1x2x4x4xf32>, %r: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %a = "tnx.add"(%c, %r) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = "tnx.relu"(%a) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%y) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  return %p : tensor<1x2x2x2xf32>
}

// A value with two readers joins neither: the second Add starts a pointwise group.
// CHECK-LABEL: func.func @two_readers
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.add"{{.*}}tnx.fusion = "epilogue", tnx.group = 0
// CHECK: "tnx.add"{{.*}}tnx.fusion = "pointwise", tnx.group = 1
func.func @two_readers(%x: tensor<8xf32>) -> tensor<8xf32> {
  %a = "tnx.relu"(%x) : (tensor<8xf32>) -> tensor<8xf32>
  %c = "tnx.add"(%a, %x) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %d = "tnx.add"(%c, %c) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %d : tensor<8xf32>
}

// An epilogue reaches its producer through a single-use Reshape, which joins as a view.
// CHECK-LABEL: func.func @epilogue_through_reshape
// CHECK: "tnx.mean_variance_normalization"{{.*}}tnx.fusion = "anchor", tnx.group = 0
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "view", tnx.group = 0
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue", tnx.group = 0 : i64, tnx.why = "epilogue of {{.*}} through a reshape: sole consumer, same size"
func.func @epilogue_through_reshape(%x: tensor<1x2x6xf32>, %s: tensor<1x4x3xf32>) -> tensor<1x4x3xf32> {
  %n = "tnx.mean_variance_normalization"(%x) {axes = array<i64: 2>, epsilon = 1.0e-5 : f32} : (tensor<1x2x6xf32>) -> tensor<1x2x6xf32>
  %r = "tnx.reshape"(%n) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<1x2x6xf32>) -> tensor<1x4x3xf32>
  %m = "tnx.mul"(%r, %s) : (tensor<1x4x3xf32>, tensor<1x4x3xf32>) -> tensor<1x4x3xf32>
  return %m : tensor<1x4x3xf32>
}

// A stencil (LRN) starts a group of its own, even after a pointwise op.
// CHECK-LABEL: func.func @stencil
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.lrn"{{.*}}tnx.fusion = "stencil", tnx.group = 1
func.func @stencil(%x: tensor<1x4x3xf32>) -> tensor<1x4x3xf32> {
  %r = "tnx.relu"(%x) : (tensor<1x4x3xf32>) -> tensor<1x4x3xf32>
  %l = "tnx.lrn"(%r) {alpha = 1.0e-4 : f32, beta = 0.75 : f32, bias = 1.0 : f32, size = 3 : i64} : (tensor<1x4x3xf32>) -> tensor<1x4x3xf32>
  return %l : tensor<1x4x3xf32>
}

// A Reshape of a group's result that is only returned is stored in place: it joins.
// CHECK-LABEL: func.func @reshape_output
// CHECK: "tnx.softmax"{{.*}}tnx.group = 0
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "view", tnx.group = 0 : i64, tnx.why = "reshape of the group's result: stored in place (same element order)"
func.func @reshape_output(%x: tensor<2x3xf32>) -> tensor<6xf32> {
  %s = "tnx.softmax"(%x) {axis = 1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %r = "tnx.reshape"(%s) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<2x3xf32>) -> tensor<6xf32>
  return %r : tensor<6xf32>
}

// Any other view that is a graph output is materialized by a copy kernel.
// CHECK-LABEL: func.func @transpose_output
// CHECK: "tnx.relu"{{.*}}tnx.group = 0
// CHECK: "tnx.transpose"{{.*}}tnx.fusion = "copy", tnx.group = 1
func.func @transpose_output(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %a = "tnx.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %t = "tnx.transpose"(%a) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %t : tensor<3x2xf32>
}

// A view read by a kernel joins no group: it is an index map on the kernel's loads.
// CHECK-LABEL: func.func @view_as_index_map
// CHECK: "tnx.transpose"(%arg0) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>)
// CHECK: "tnx.relu"{{.*}}tnx.group = 0
func.func @view_as_index_map(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %t = "tnx.transpose"(%x) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %a = "tnx.relu"(%t) : (tensor<3x2xf32>) -> tensor<3x2xf32>
  return %a : tensor<3x2xf32>
}

// A pointwise group read only by a Conv, through a Transpose, becomes its prologue: its
// inputs weigh no more than twice its output. The Transpose joins as a view.
// CHECK-LABEL: func.func @prologue
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "prologue", tnx.group = [[G:[0-9]+]] : i64, tnx.why = "prologue of {{.*}}: computed on its loads (256 input bytes for 256 output bytes, no round trip through memory)"
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "prologue", tnx.group = [[G]]
// CHECK: "tnx.transpose"{{.*}}tnx.fusion = "view", tnx.group = [[G]] : i64, tnx.why = "index map between the prologue and {{.*}}"
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

// No prologue when the pointwise value has a second reader (here the graph output).
// CHECK-LABEL: func.func @prologue_read_twice
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 1
func.func @prologue_read_twice(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %r = "tnx.relu"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = "tnx.softmax"(%r) {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r, %s : tensor<4x8xf32>, tensor<4x8xf32>
}

// A Softmax (a row anchor: it reads its input at most twice) takes a prologue whose inputs
// weigh up to three times its output: three full-size tensors in, one out. Four are too
// heavy: recomputed on a second read of the row they would move more than a round trip.
// CHECK-LABEL: func.func @prologue_three_inputs
// CHECK: "tnx.add"{{.*}}tnx.fusion = "prologue", tnx.group = 1
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "prologue", tnx.group = 1
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 1
func.func @prologue_three_inputs(%y: tensor<64x8xf32>, %z: tensor<64x8xf32>, %v: tensor<64x8xf32>) -> tensor<64x8xf32> {
  %a = "tnx.add"(%y, %z) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %m = "tnx.mul"(%a, %v) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %u = "tnx.softmax"(%m) {axis = 1 : i64} : (tensor<64x8xf32>) -> tensor<64x8xf32>
  return %u : tensor<64x8xf32>
}

// CHECK-LABEL: func.func @prologue_too_heavy
// CHECK: "tnx.add"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue", tnx.group = 0
// CHECK: "tnx.sub"{{.*}}tnx.fusion = "epilogue", tnx.group = 0
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 1
func.func @prologue_too_heavy(%y: tensor<64x8xf32>, %z: tensor<64x8xf32>, %v: tensor<64x8xf32>, %w: tensor<64x8xf32>) -> tensor<64x8xf32> {
  %a = "tnx.add"(%y, %z) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %m = "tnx.mul"(%a, %v) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %d = "tnx.sub"(%m, %w) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %u = "tnx.softmax"(%d) {axis = 1 : i64} : (tensor<64x8xf32>) -> tensor<64x8xf32>
  return %u : tensor<64x8xf32>
}

// A generator (a Range over a dynamic length: it reads no tensor) merges into the group of
// its only reader through the views between, at another shape (positions broadcast over
// the batch): no kernel of its own.
// CHECK-LABEL: func.func @generator
// CHECK: "tnx.range"{{.*}}tnx.fusion = "generator", tnx.group = [[G:[0-9]+]]
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "view", tnx.group = [[G]]
// CHECK: "tnx.add"{{.*}}tnx.fusion = "pointwise", tnx.group = [[G]]
func.func @generator(%x: tensor<?x?xi64, ["batch", "seq"]>) -> tensor<?x?xi64, ["batch", "seq"]> attributes {tnx.symbols = {batch = 4 : i64, seq = 8 : i64}} {
  %start = "tnx.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
  %delta = "tnx.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
  %r = "tnx.range"(%start, %delta) {operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<i64>, tensor<i64>) -> tensor<?xi64, ["seq"]>
  %p = "tnx.reshape"(%r) {operandSegmentSizes = array<i32: 1, 0>} : (tensor<?xi64, ["seq"]>) -> tensor<1x?xi64, ["seq"]>
  %s = "tnx.add"(%x, %p) : (tensor<?x?xi64, ["batch", "seq"]>, tensor<1x?xi64, ["seq"]>) -> tensor<?x?xi64, ["batch", "seq"]>
  return %s : tensor<?x?xi64, ["batch", "seq"]>
}

// The branches of a decomposed Gelu meet in one Mul: the Tanh branch's group merges into
// the Mul's group, one pointwise kernel.
// CHECK-LABEL: func.func @branches
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "pointwise", tnx.group = [[P:[0-9]+]]
// CHECK: "tnx.tanh"{{.*}}tnx.fusion = "branch", tnx.group = [[P]] : i64, tnx.why = "pointwise branch merged into {{.*}}'s group: its only reader"
// CHECK: "tnx.add"{{.*}}tnx.fusion = "branch", tnx.group = [[P]]
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue", tnx.group = [[P]]
func.func @branches(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %h = "tnx.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %one = "tnx.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %a = "tnx.mul"(%x, %h) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %t = "tnx.tanh"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %u = "tnx.add"(%t, %one) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %y = "tnx.mul"(%a, %u) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// An attention match-attention marked (its dump, as input) is one group; partition keeps
// its codes and prose, takes V's Relu as a prologue and removes the match ids.
// CHECK-LABEL: func.func @attention
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "anchor", tnx.group = [[A:[0-9]+]] : i64, tnx.why = "anchor: flash attention {{.*}}"
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "attention", tnx.group = [[A]]
// CHECK: "tnx.softmax"{{.*}}tnx.attention, tnx.fusion = "attention", tnx.group = [[A]]
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "prologue", tnx.group = [[A]]
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "attention", tnx.group = [[A]]
// CHECK-NOT: tnx.attention_id
func.func @attention(%q: tensor<8x16xf32>, %kt: tensor<16x8xf32>, %v: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %c = "tnx.constant"() {value = dense<0.25> : tensor<f32>} : () -> tensor<f32>
  %s = "tnx.mat_mul"(%q, %kt) {tnx.attention_id = 0 : i64, tnx.fusion = "anchor", tnx.why = "anchor: flash attention (online softmax, the score matrix is never stored)"} : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %sc = "tnx.mul"(%s, %c) {tnx.attention_id = 0 : i64, tnx.fusion = "attention", tnx.why = "attention: applied to each tile of scores"} : (tensor<8x8xf32>, tensor<f32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%sc) {axis = 1 : i64, tnx.attention, tnx.attention_id = 0 : i64, tnx.fusion = "attention", tnx.why = "attention: online softmax over tiles of keys"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %rv = "tnx.relu"(%v) : (tensor<8x16xf32>) -> tensor<8x16xf32>
  %o = "tnx.mat_mul"(%p, %rv) {tnx.attention_id = 0 : i64, tnx.fusion = "attention", tnx.why = "attention: probabilities times V, accumulated per tile of keys"} : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o : tensor<8x16xf32>
}

// A near match's note (match-attention's tnx.why) stays, in parentheses, on the anchor.
// CHECK-LABEL: func.func @near_attention
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 1 : i64, tnx.why = "anchor (not fused as attention: the Softmax's result is not only the left operand of a MatMul)"
func.func @near_attention(%q: tensor<8x16xf32>, %kt: tensor<16x8xf32>, %v: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8x8xf32>) {
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%s) {axis = 1 : i64, tnx.why = "not fused as attention: the Softmax's result is not only the left operand of a MatMul"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o, %p : tensor<8x16xf32>, tensor<8x8xf32>
}
