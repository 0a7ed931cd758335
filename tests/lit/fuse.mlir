// The fusion passes in the compiler's order, end to end (each has its own test file too).
// RUN: tritonnx-opt %s --pass-pipeline=split-k,merge-siblings,match-attention,partition,multi-output | filecheck %s
// RUN: tritonnx-opt %s --pass-pipeline=fuse | filecheck %s

// Conv anchors a group; the residual Add and the Relu after it join as its epilogue.
// The MaxPool starts a group of its own.
// CHECK-LABEL: func.func @conv_epilogue
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = 0
// CHECK: "tnx.add"{{.*}}tnx.fusion = "epilogue", tnx.group = 0
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
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.sigmoid"{{.*}}tnx.fusion = "epilogue", tnx.group = 0
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
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "view", tnx.group = 0 : i64, tnx.why = "reshape of the group's result: stored in place (same element order)"
// CHECK: "tnx.relu"{{.*}}tnx.group = 1
// CHECK: "tnx.transpose"{{.*}}tnx.fusion = "copy", tnx.group = 2
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
// CHECK: "tnx.reshape"{{.*}}tnx.fusion = "view", tnx.group = 0
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue", tnx.group = 0 : i64, tnx.why = "epilogue of {{.*}} through a reshape: sole consumer, same size"
// CHECK: "tnx.lrn"{{.*}}tnx.fusion = "stencil", tnx.group = 1
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
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "prologue", tnx.group = [[G:[0-9]+]] : i64, tnx.why = "prologue of {{.*}}: computed on its loads (256 input bytes for 256 output bytes, no round trip through memory)"
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "prologue", tnx.group = [[G]]
// CHECK: "tnx.transpose"{{.*}}tnx.fusion = "view", tnx.group = [[G]]
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
// group whose inputs weigh more than three times its output (four full-size tensors in,
// one out: recomputing it on a second read of the row would move more than storing it once).
// CHECK-LABEL: func.func @no_prologue
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 0
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 1
// CHECK: "tnx.add"{{.*}}tnx.fusion = "pointwise", tnx.group = 2
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "epilogue", tnx.group = 2
// CHECK: "tnx.sub"{{.*}}tnx.fusion = "epilogue", tnx.group = 2
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = 3
func.func @no_prologue(%x: tensor<4x8xf32>, %y: tensor<64x8xf32>, %z: tensor<64x8xf32>, %v: tensor<64x8xf32>, %w: tensor<64x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<64x8xf32>) {
  %r = "tnx.relu"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %s = "tnx.softmax"(%r) {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = "tnx.add"(%y, %z) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %m = "tnx.mul"(%a, %v) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %d = "tnx.sub"(%m, %w) : (tensor<64x8xf32>, tensor<64x8xf32>) -> tensor<64x8xf32>
  %u = "tnx.softmax"(%d) {axis = 1 : i64} : (tensor<64x8xf32>) -> tensor<64x8xf32>
  return %r, %s, %u : tensor<4x8xf32>, tensor<4x8xf32>, tensor<64x8xf32>
}

// Scaled dot-product attention (MatMul, scale, mask add, Softmax over the keys, MatMul)
// is one group: a flash-attention kernel, the scores never stored.
// CHECK-LABEL: func.func @attention
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "anchor", tnx.group = [[A:[0-9]+]] : i64, tnx.why = "anchor: flash attention (online softmax, the score matrix is never stored)"
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "attention", tnx.group = [[A]]
// CHECK: "tnx.add"{{.*}}tnx.fusion = "attention", tnx.group = [[A]]
// CHECK: "tnx.softmax"{{.*}}tnx.attention, tnx.fusion = "attention", tnx.group = [[A]]
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "attention", tnx.group = [[A]]
func.func @attention(%q: tensor<1x2x8x16xf32>, %kt: tensor<1x2x16x8xf32>, %v: tensor<1x2x8x16xf32>, %mask: tensor<1x1x1x8xf32>) -> tensor<1x2x8x16xf32> {
  %c = "tnx.constant"() {value = dense<0.25> : tensor<f32>} : () -> tensor<f32>
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<1x2x8x16xf32>, tensor<1x2x16x8xf32>) -> tensor<1x2x8x8xf32>
  %sc = "tnx.mul"(%s, %c) : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %m = "tnx.add"(%sc, %mask) : (tensor<1x2x8x8xf32>, tensor<1x1x1x8xf32>) -> tensor<1x2x8x8xf32>
  %p = "tnx.softmax"(%m) {axis = 3 : i64} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// A Softmax whose result is also returned cannot stay in registers: no attention fusion,
// and the anchor says why.
// CHECK-LABEL: func.func @not_attention
// CHECK: "tnx.softmax"{{.*}}tnx.fusion = "anchor", tnx.group = {{[0-9]+}} : i64, tnx.why = "anchor (not fused as attention: the Softmax's result is not only the left operand of a MatMul)"
func.func @not_attention(%q: tensor<8x16xf32>, %kt: tensor<16x8xf32>, %v: tensor<8x16xf32>) -> (tensor<8x16xf32>, tensor<8x8xf32>) {
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<8x16xf32>, tensor<16x8xf32>) -> tensor<8x8xf32>
  %p = "tnx.softmax"(%s) {axis = 1 : i64} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<8x8xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  return %o, %p : tensor<8x16xf32>, tensor<8x8xf32>
}

// Horizontal fusion: three projections of one input (Q, K, V with their biases) become
// one MatMul over the concatenated weights and one bias Add; each former result is a
// Slice of it (an index map for its readers).
// CHECK-LABEL: func.func @qkv
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "anchor", tnx.group = [[G:[0-9]+]] : i64, tnx.merged = "horizontal fusion of {{.*}}: one MatMul reads the input once"{{.*}} -> tensor<4x24xf32>
// CHECK: "tnx.add"{{.*}}tnx.group = [[G]]
// CHECK-COUNT-3: "tnx.slice"
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

// The branches of a decomposed tanh Gelu (x * 0.5 and 1 + tanh(...)) meet in one Mul:
// the branch groups merge, one pointwise kernel computes the whole expression.
// CHECK-LABEL: func.func @gelu_branches
// CHECK: "tnx.mul"{{.*}}tnx.group = [[P:[0-9]+]]
// CHECK: "tnx.tanh"{{.*}}tnx.fusion = "branch", tnx.group = [[P]]
// CHECK: "tnx.add"{{.*}}tnx.group = [[P]]
// CHECK: "tnx.mul"{{.*}}tnx.group = [[P]]
func.func @gelu_branches(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %h = "tnx.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %one = "tnx.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %a = "tnx.mul"(%x, %h) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %t = "tnx.tanh"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %u = "tnx.add"(%t, %one) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %y = "tnx.mul"(%a, %u) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// Horizontal fusion of Convs (Inception's 1x1 branches): one Conv over the weights
// concatenated along output channels, the shared Relu once, channel Slices for readers.
// The 3x3 Conv of the same input has another kernel_shape and stays apart.
// CHECK-LABEL: func.func @inception_branches
// CHECK: "tnx.conv"{{.*}}tnx.merged = "horizontal fusion of {{.*}}: one Conv reads the input once"{{.*}} -> tensor<1x12x4x4xf32>
// CHECK-NEXT: "tnx.relu"{{.*}} -> tensor<1x12x4x4xf32>
// CHECK-COUNT-2: "tnx.slice"{{.*}}(tensor<1x12x4x4xf32>)
// CHECK: "tnx.conv"{{.*}}kernel_shape = array<i64: 3, 3>
func.func @inception_branches(%x: tensor<1x4x4x4xf32>) -> tensor<1x14x4x4xf32> {
  %w1 = "tnx.constant"() {value = dense<0.5> : tensor<4x4x1x1xf32>} : () -> tensor<4x4x1x1xf32>
  %w2 = "tnx.constant"() {value = dense<0.25> : tensor<8x4x1x1xf32>} : () -> tensor<8x4x1x1xf32>
  %w3 = "tnx.constant"() {value = dense<0.125> : tensor<2x4x3x3xf32>} : () -> tensor<2x4x3x3xf32>
  %c1 = "tnx.conv"(%x, %w1) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %r1 = "tnx.relu"(%c1) : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %c2 = "tnx.conv"(%x, %w2) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x4x4xf32>
  %r2 = "tnx.relu"(%c2) : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %c3 = "tnx.conv"(%x, %w3) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<2x4x3x3xf32>) -> tensor<1x2x4x4xf32>
  %a = "tnx.concat"(%r1, %r2) {axis = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<1x8x4x4xf32>) -> tensor<1x12x4x4xf32>
  %y = "tnx.concat"(%a, %c3) {axis = 1 : i64} : (tensor<1x12x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x14x4x4xf32>
  return %y : tensor<1x14x4x4xf32>
}

// Multi-output fusion: the Conv's result is read by the MaxPool and by a Sigmoid whose
// product with a constant is a graph output, so the Sigmoid can be neither the Conv's
// epilogue nor a prologue. It becomes the Conv kernel's second output, computed from the
// tile the kernel holds; the constant it reads moves up with it.
// CHECK-LABEL: func.func @second_output
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = 0
// CHECK: "tnx.constant"{{.*}}tensor<1x2x1x1xf32>
// CHECK: "tnx.sigmoid"{{.*}}tnx.fusion = "multi_output", tnx.group = 0 : i64, tnx.why = "second output of {{.*}}'s kernel: reads its result at the same index, which other kernels read too (multi-output kernel: one launch and one read fewer)"
// CHECK: "tnx.mul"{{.*}}tnx.group = 0
// CHECK: "tnx.max_pool"{{.*}}tnx.group = 1
func.func @second_output(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%c) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  %k = "tnx.constant"() {value = dense<2.0> : tensor<1x2x1x1xf32>} : () -> tensor<1x2x1x1xf32>
  %s = "tnx.sigmoid"(%c) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %m = "tnx.mul"(%s, %k) : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  return %p, %m : tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>
}

// Multi-output fusion through a Slice: Inception's branch Conv, merged with its sibling,
// is followed by a per-channel Mul and a Relu whose result is a graph output. They become
// a second output of the merged Conv's kernel covering the branch's channels.
// CHECK-LABEL: func.func @second_output_window
// CHECK: "tnx.conv"{{.*}}tnx.fusion = "anchor", tnx.group = [[G:[0-9]+]]{{.*}} -> tensor<1x6x4x4xf32>
// CHECK: "tnx.mul"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]] : i64, tnx.why = "second output of {{.*}}'s kernel: reads its result through a Slice at the same index{{.*}}"
// CHECK: "tnx.relu"{{.*}}tnx.group = [[G]]
// CHECK: "tnx.max_pool"{{.*}}tnx.fusion = "anchor"
func.func @second_output_window(%x: tensor<1x4x4x4xf32>) -> (tensor<1x4x2x2xf32>, tensor<1x2x4x4xf32>) {
  %w1 = "tnx.constant"() {value = dense<0.5> : tensor<4x4x1x1xf32>} : () -> tensor<4x4x1x1xf32>
  %w2 = "tnx.constant"() {value = dense<0.25> : tensor<2x4x1x1xf32>} : () -> tensor<2x4x1x1xf32>
  %c1 = "tnx.conv"(%x, %w1) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<4x4x1x1xf32>) -> tensor<1x4x4x4xf32>
  %c2 = "tnx.conv"(%x, %w2) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x4x4x4xf32>, tensor<2x4x1x1xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%c1) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x4x4x4xf32>) -> tensor<1x4x2x2xf32>
  %k = "tnx.constant"() {value = dense<[[[[2.0]], [[3.0]]]]> : tensor<1x2x1x1xf32>} : () -> tensor<1x2x1x1xf32>
  %m = "tnx.mul"(%c2, %k) : (tensor<1x2x4x4xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %r = "tnx.relu"(%m) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %p, %r : tensor<1x4x2x2xf32>, tensor<1x2x4x4xf32>
}

// A second output made of several ops moves up to its host's kernel in block order. The
// Round is the Mul's producer, so the Mul joins it as an epilogue; the Shrink, whose only
// reader is the Mul, merges into that group after them, but it comes first in the block:
// moved up in the order the ops joined, the Mul would read the Shrink before it is
// defined (fuzz seed 1178: Split -> Shrink, Round -> Mul).
// CHECK-LABEL: func.func @second_output_block_order
// CHECK: "tnx.relu"{{.*}}tnx.group = [[G:[0-9]+]]
// CHECK-NEXT: "tnx.shrink"{{.*}}tnx.fusion = "multi_output", tnx.group = [[G]]
// CHECK-NEXT: "tnx.round"{{.*}}tnx.group = [[G]]
// CHECK-NEXT: "tnx.mul"{{.*}}tnx.group = [[G]]
func.func @second_output_block_order(%x: tensor<1x7xf32>) -> (tensor<1x7xf32>, tensor<1x7xf32>) {
  %a = "tnx.relu"(%x) : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %s = "tnx.shrink"(%a) {bias = 5.000000e-01 : f32, lambd = 5.000000e-01 : f32} : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %r = "tnx.round"(%a) : (tensor<1x7xf32>) -> tensor<1x7xf32>
  %m = "tnx.mul"(%r, %s) : (tensor<1x7xf32>, tensor<1x7xf32>) -> tensor<1x7xf32>
  return %a, %m : tensor<1x7xf32>, tensor<1x7xf32>
}

// Not second outputs: a Relu that reads the Conv's result through a Transpose (the kernel
// holds it at another index), and a Sigmoid of a Slice of a pointwise result that nothing
// else reads (the kernel would store a value nobody needs).
// CHECK-LABEL: func.func @no_second_output
// CHECK: "tnx.conv"{{.*}}tnx.group = 0
// CHECK: "tnx.relu"{{.*}}tnx.fusion = "pointwise", tnx.group = 1
// CHECK: "tnx.max_pool"{{.*}}tnx.group = 2
// CHECK: "tnx.neg"{{.*}}tnx.fusion = "pointwise", tnx.group = 3
// CHECK: "tnx.sigmoid"{{.*}}tnx.fusion = "pointwise", tnx.group = 4
func.func @no_second_output(%x: tensor<1x2x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>) {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %t = "tnx.transpose"(%c) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %r = "tnx.relu"(%t) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = "tnx.max_pool"(%c) {dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  %n = "tnx.neg"(%x) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s = "tnx.slice"(%n) {operandSegmentSizes = array<i32: 1, 0, 0, 0, 0>, starts = array<i64: 0, 1, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32>
  %g = "tnx.sigmoid"(%s) : (tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %p, %r, %g : tensor<1x2x2x2xf32>, tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>
}
