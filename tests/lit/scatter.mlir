// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile | filecheck %s

// ScatterND with reduction add and index pairs from a graph input: the scatter starts a
// kernel (a stencil) that the Relu joins; each output element starts from data and loops
// over the 2 index tuples in order (scf.for carrying the tile), checks each coordinate
// against its axis (sizes 4 and 3: word 0 of the check buffer is 1 + the coordinate's
// position), and adds the update where the whole tuple matches its coordinates.
// CHECK-LABEL: func.func @main
// CHECK: "tnx.empty"() {tnx.check = {axis = 0 : i64, node = "scat", op_type = "ScatterND", size = "4", sizes = ["4", "3"]}}
// CHECK: call @[[K:scatter_nd_relu_f32_[0-9a-f]+]](
// CHECK: func.func private @[[K]](%[[X:.*]]: tensor<4x3xf32>, %[[I:.*]]: tensor<2x2xi64>, %[[U:.*]]: tensor<2xf32>, %[[CHK:.*]]: tensor<2xi64>, %{{.*}}: tensor<4x3xf32>)
// CHECK-SAME: tnx.op_types = ["ScatterND", "Relu"]
// CHECK: %[[DATA:.*]] = "tile.load"(%[[X]]
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[DATA]])
// CHECK: "tile.load"(%[[I]]
// CHECK: %[[ONE:.*]] = "tile.full"() {dims = ["BLOCK"], value = 1 : i64}
// CHECK: "tile.store"(%[[CHK]], %{{.*}}, %[[ONE]], %{{.*}})
// CHECK: "tile.load"(%[[I]]
// CHECK: %[[TWO:.*]] = "tile.full"() {dims = ["BLOCK"], value = 2 : i64}
// CHECK: "tile.store"(%[[CHK]], %{{.*}}, %[[TWO]], %{{.*}})
// CHECK: %[[UPD:.*]] = "tile.load"(%[[U]], %{{.*}}, %[[HIT:[^)]*]])
// CHECK: %[[SUM:.*]] = arith.addf %[[ACC]], %[[UPD]]
// CHECK: %[[NEXT:.*]] = arith.select %[[HIT]], %[[SUM]], %[[ACC]]
// CHECK: scf.yield %[[NEXT]]
// CHECK: arith.maximumf
// CHECK: "tile.store"
func.func @main(%x: tensor<4x3xf32>, %i: tensor<2x2xi64>, %u: tensor<2xf32>) -> tensor<4x3xf32> {
  %s = "tnx.scatter_nd"(%x, %i, %u) {reduction = "add"} : (tensor<4x3xf32>, tensor<2x2xi64>, tensor<2xf32>) -> tensor<4x3xf32> loc("scat")
  %r = "tnx.relu"(%s) : (tensor<4x3xf32>) -> tensor<4x3xf32>
  return %r : tensor<4x3xf32>
}
