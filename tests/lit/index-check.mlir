// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile | filecheck %s

// A Gather whose indices are a graph input (token ids) is checked: outline marks it, the
// call site gets an int64[2] check buffer tagged with the node, and the kernel takes it
// between its inputs and its output, stores the flag and the index where an index is out
// of [-4, 3], and masks the table's load with the validity. The Gather by constant
// indices is not checked (the importer verifies constants).
// CHECK-LABEL: func.func @main
// CHECK: %[[C:.*]] = "tnx.empty"() {tnx.check = {axis = 0 : i64, node = "embed", op_type = "Gather", size = "4"}} : () -> tensor<2xi64>
// CHECK: call @[[K0:[a-z0-9_]+_[0-9a-f]+]](%{{.*}}, %arg0, %[[C]], %{{.*}})
// CHECK: call @[[K1:[a-z0-9_]+_[0-9a-f]+]](
// CHECK-NOT: tnx.check
// CHECK: func.func private @[[K0]](%{{.*}}: tensor<4x8xf32>, %[[IDS:.*]]: tensor<3xi64>, %[[CHK:.*]]: tensor<2xi64>, %{{.*}}: tensor<3x8xf32>)
// CHECK-SAME: tnx.checks = [{axis = 0 : i64, node = "embed", op_type = "Gather", size = "4"}]
// CHECK: %[[K:.*]] = "tile.load"(%[[IDS]]
// CHECK: %[[W:.*]] = arith.addi %[[K]], %{{.*}} : tensor<32xi64>
// CHECK: %[[LO:.*]] = arith.cmpi sge, %[[W]]
// CHECK: %[[HI:.*]] = arith.cmpi slt, %[[K]]
// CHECK: %[[VALID:.*]] = arith.andi %[[LO]], %[[HI]]
// CHECK: %[[BAD:.*]] = arith.xori %[[VALID]]
// CHECK: %[[STORE:.*]] = arith.andi %{{.*}}, %[[BAD]]
// CHECK: "tile.store"(%[[CHK]], %{{.*}}, %{{.*}}, %[[STORE]])
// CHECK: "tile.store"(%[[CHK]], %{{.*}}, %[[K]], %[[STORE]])
// CHECK: %[[MASK:.*]] = arith.andi %{{.*}}, %[[VALID]]
// CHECK: "tile.load"(%{{.*}}, %{{.*}}, %[[MASK]])
// CHECK: func.func private @[[K1]](%{{.*}}: tensor<2x4xf32>, %{{.*}}: tensor<2xi64>, %{{.*}}: tensor<2x2xf32>)
// CHECK-NOT: tnx.checks
// CHECK-NOT: arith.xori
func.func @main(%ids: tensor<3xi64>, %x: tensor<2x4xf32>) -> (tensor<3x8xf32>, tensor<2x2xf32>) {
  %t = "tnx.constant"() {value = dense<1.0> : tensor<4x8xf32>} : () -> tensor<4x8xf32>
  %g = "tnx.gather"(%t, %ids) {axis = 0 : i64} : (tensor<4x8xf32>, tensor<3xi64>) -> tensor<3x8xf32> loc("embed")
  %r = "tnx.relu"(%g) : (tensor<3x8xf32>) -> tensor<3x8xf32>
  %i = "tnx.constant"() {value = dense<[3, 0]> : tensor<2xi64>} : () -> tensor<2xi64>
  %h = "tnx.gather"(%x, %i) {axis = 1 : i64} : (tensor<2x4xf32>, tensor<2xi64>) -> tensor<2x2xf32> loc("take")
  %s = "tnx.relu"(%h) : (tensor<2x2xf32>) -> tensor<2x2xf32>
  return %r, %s : tensor<3x8xf32>, tensor<2x2xf32>
}
