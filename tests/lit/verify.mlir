// RUN: not tritonnx-opt %s --pass-pipeline=tnx-verify 2>&1 | filecheck %s --check-prefix=ERR
// RUN: sed -e 's/tensor<8x4x3x3xf32>/tensor<8x3x3x3xf32>/' %s | tritonnx-opt --pass-pipeline=tnx-verify | filecheck %s --check-prefix=OK

// A Conv whose input has 3 channels while its weight expects 4 is refused, naming the
// node from its location; with a matching weight the module passes unchanged.
// ERR: tritonnx-opt: node conv1 (Conv, opset 17): input X has 3 channels but W expects 4 (W shape [8, 4, 3, 3], group 1).
// OK-LABEL: func.func @main
// OK: "tnx.conv"(%arg0, %arg1) {{.*}} : (tensor<1x3x8x8xf32>, tensor<8x3x3x3xf32>) -> tensor<1x8x6x6xf32>
module attributes {tnx.opset = 21 : i64, tnx.source_opset = 17 : i64} {
  func.func @main(%x: tensor<1x3x8x8xf32>, %w: tensor<8x4x3x3xf32>) -> tensor<1x8x6x6xf32> {
    %y = "tnx.conv"(%x, %w) {group = 1 : i64, kernel_shape = [3, 3], pads = [0, 0, 0, 0], strides = [1, 1], dilations = [1, 1], auto_pad = "NOTSET", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x3x8x8xf32>, tensor<8x4x3x3xf32>) -> tensor<1x8x6x6xf32> loc("conv1")
    return %y : tensor<1x8x6x6xf32>
  }
}
