// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize | filecheck %s --check-prefix=CANON
// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize,fuse,outline | filecheck %s --check-prefix=OUTLINE

// A dynamic module (seq sampled at 113): the index b * seq + s that transformers' padding
// masks compute. A Range over a dynamic length is not folded into a weight; its canonical
// form drops `limit` (the result type gives the length).
// CANON: "tnx.range"(%{{.*}}, %{{.*}}) {operandSegmentSizes = array<i32: 1, 0, 1>} : (tensor<i64>, tensor<i64>) -> tensor<113xi64>
// The scalar 113 is the size seq: outline computes it in the kernel instead of passing a
// weight, so the kernel is the same at every sample (and takes seq at run time).
// OUTLINE-LABEL: func.func @main
// OUTLINE-NOT: dense<113>
// OUTLINE: call @[[K0:[a-z0-9_]+_[0-9a-f]+]](%{{.*}}, %{{.*}}, %arg0)
// OUTLINE-LABEL: func.func private @{{[a-z0-9_]+_[0-9a-f]+}}
// OUTLINE: "tnx.range"
// OUTLINE: "tnx.constant"() {value = dense<113> : tensor<1xi64>}
module attributes {tnx.symbols = {seq = 113 : i64}} {
  func.func @main(%b: tensor<113xi64>) -> tensor<113xi64> {
    %start = "tnx.constant"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>
    %limit = "tnx.constant"() {value = dense<113> : tensor<i64>} : () -> tensor<i64>
    %delta = "tnx.constant"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>
    %seq = "tnx.constant"() {value = dense<113> : tensor<1xi64>} : () -> tensor<1xi64>
    %s = "tnx.range"(%start, %limit, %delta) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<113xi64>
    %m = "tnx.mul"(%b, %seq) : (tensor<113xi64>, tensor<1xi64>) -> tensor<113xi64>
    %i = "tnx.add"(%m, %s) : (tensor<113xi64>, tensor<113xi64>) -> tensor<113xi64>
    return %i : tensor<113xi64>
  }
}
