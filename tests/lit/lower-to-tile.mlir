// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile | filecheck %s

// Add + Relu on a broadcast bias becomes one flat pointwise program: the bias load uses
// only the channel index (the broadcast dimension is an index map, not a copy).
// CHECK-LABEL: func.func @main
// CHECK: %[[OUT:.*]] = "tnx.empty"() : () -> tensor<2x3xf32>
// CHECK: call @[[K0:[a-z0-9_]+_[0-9a-f]+]](%arg0, %{{.*}}, %[[OUT]]) {tnx.nodes = {{.*}}} : (tensor<2x3xf32>, tensor<3xf32>, tensor<2x3xf32>) -> ()
// CHECK: func.func private @[[K0]](%[[X:.*]]: tensor<2x3xf32>, %[[B:.*]]: tensor<3xf32>, %[[Y:.*]]: tensor<2x3xf32>)
// CHECK: "tile.program_id"() {axis = 0 : i64}
// CHECK: %[[OFFS:.*]] = arith.addi
// CHECK: %[[MASK:.*]] = arith.cmpi slt, %[[OFFS]]
// CHECK-DAG: %[[COL:.*]] = arith.remsi %[[OFFS]]
// CHECK-DAG: "tile.load"(%[[X]], %{{.*}}, %{{.*}})
// CHECK-DAG: "tile.load"(%[[B]], %[[COL]], %{{.*}})
// CHECK: arith.addf
// CHECK: arith.maximumf
// CHECK: "tile.store"(%[[Y]], %{{.*}}, %{{.*}}, %[[MASK]])
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %b = "tnx.constant"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %a = "tnx.add"(%x, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %y = "tnx.relu"(%a) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
