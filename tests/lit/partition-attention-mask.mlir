// RUN: tritonnx-opt %s --pass-pipeline=match-attention,partition | filecheck %s

// A mask computed from an input (Attention-24's nonpad_kv_seqlen: key j < n[b]) on a Where
// of the scores: its ops join the attention's group as a prologue, computed on each tile of
// scores, instead of a kernel of their own.
// CHECK-LABEL: func.func @computed_mask
// CHECK: "tnx.less"{{.*}}tnx.fusion = "prologue", tnx.group = [[G:[0-9]+]] : i64
// CHECK: "tnx.mat_mul"{{.*}}tnx.fusion = "anchor", tnx.group = [[G]] : i64
// CHECK: "tnx.where"{{.*}}tnx.fusion = "attention", tnx.group = [[G]] : i64
// CHECK: "tnx.softmax"{{.*}}tnx.group = [[G]] : i64
func.func @computed_mask(%q: tensor<2x2x4x16xf32>, %kt: tensor<2x2x16x8xf32>, %v: tensor<2x2x8x16xf32>, %n: tensor<2x1x1x1xi64>) -> tensor<2x2x4x16xf32> {
  %j = "tnx.constant"() {value = dense<[[[[0, 1, 2, 3, 4, 5, 6, 7]]]]> : tensor<1x1x1x8xi64>} : () -> tensor<1x1x1x8xi64>
  %ninf = "tnx.constant"() {value = dense<0xFF800000> : tensor<f32>} : () -> tensor<f32>
  %keep = "tnx.less"(%j, %n) : (tensor<1x1x1x8xi64>, tensor<2x1x1x1xi64>) -> tensor<2x1x1x8xi1>
  %s = "tnx.mat_mul"(%q, %kt) : (tensor<2x2x4x16xf32>, tensor<2x2x16x8xf32>) -> tensor<2x2x4x8xf32>
  %m = "tnx.where"(%keep, %s, %ninf) : (tensor<2x1x1x8xi1>, tensor<2x2x4x8xf32>, tensor<f32>) -> tensor<2x2x4x8xf32>
  %p = "tnx.softmax"(%m) {axis = 3 : i64} : (tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  %o = "tnx.mat_mul"(%p, %v) : (tensor<2x2x4x8xf32>, tensor<2x2x8x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}
