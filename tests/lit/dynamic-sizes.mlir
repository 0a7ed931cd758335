// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize | filecheck %s --check-prefix=CANON
// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize,fuse,outline | filecheck %s --check-prefix=OUTLINE

// A dynamic module: the index b * seq + s that transformers' padding masks compute, with
// seq from a Shape computation. The shape arithmetic folds into a `tnx.sizes` of
// expressions; a Range over a dynamic length is not folded into a weight, and its
// canonical form drops `limit` (the result type gives the length).
// CANON: "tnx.sizes"() {exprs = ["seq"]} : () -> tensor<1xi64>
// CANON: "tnx.range"(%{{.*}}, %{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<i64>, tensor<i64>) -> tensor<?xi64, ["seq"]>
// The size seq is computed in the kernel (it takes seq at run time), not passed as a weight.
// OUTLINE-LABEL: func.func @main
// OUTLINE-NOT: tnx.sizes
// OUTLINE: call @[[K0:[a-z0-9_]+_[0-9a-f]+]](%{{.*}}, %{{.*}}, %arg0)
// OUTLINE-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// OUTLINE: "tnx.range"
// OUTLINE: "tnx.sizes"() {exprs = ["seq"]}
module attributes {tnx.symbols = {seq = 128 : i64}} {
  func.func @main(%b: tensor<?xi64, ["seq"]>) -> tensor<?xi64, ["seq"]> {
    %start = "tnx.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
    %shape = "tnx.shape"(%b) : (tensor<?xi64, ["seq"]>) -> tensor<1xi64>
    %zero = "tnx.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
    %limit = "tnx.gather"(%shape, %zero) {axis = 0 : i64} : (tensor<1xi64>, tensor<1xi64>) -> tensor<1xi64>
    %lim = "tnx.reshape"(%limit) : (tensor<1xi64>) -> tensor<i64>
    %delta = "tnx.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
    %s = "tnx.range"(%start, %lim, %delta) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<?xi64, ["seq"]>
    %m = "tnx.mul"(%b, %limit) : (tensor<?xi64, ["seq"]>, tensor<1xi64>) -> tensor<?xi64, ["seq"]>
    %i = "tnx.add"(%m, %s) : (tensor<?xi64, ["seq"]>, tensor<?xi64, ["seq"]>) -> tensor<?xi64, ["seq"]>
    return %i : tensor<?xi64, ["seq"]>
  }
}
