// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks | filecheck %s --check-prefix=INTERP
// RUN: tritonnx-opt %s --pass-pipeline='fuse,outline,choose-blocks{target=gpu}' | filecheck %s --check-prefix=GPU

// A 1x1 conv over 56x56 (M = 3136, N = 64, K = 64): 64x64 blocks give only 49 programs
// for 132 SMs, so the GPU table halves BLOCK_N: 64x32x16 blocks, a 49x2x1 grid, 2 pipeline
// stages, BLOCK_K 16 and 8 warps for an fp32 (FMA) dot. The interpreter table takes the largest blocks.
// The cost model's figures ride along: 2 * M * N * K FLOPs, %x is the dot's data (a), %w its weights (b).
// INTERP: tnx.block = {BLOCK_K = 64 : i64, BLOCK_M = 2048 : i64, BLOCK_N = 64 : i64}, tnx.cost = {flops = 25690112 : i64, roles = ["a", "b"]}, tnx.grid = array<i64: 2, 1, 1>
// Three autotune candidates ride along for a GPU target (BLOCK_M doubled, BLOCK_N doubled, BLOCK_M halved).
// GPU: tnx.block = {BLOCK_K = 16 : i64, BLOCK_M = 64 : i64, BLOCK_N = 32 : i64}, tnx.candidates = [{tnx.block = {BLOCK_K = 16 : i64, BLOCK_M = 128 : i64, BLOCK_N = 32 : i64}, tnx.grid = array<i64: 25, 2, 1>{{.*}}}, {tnx.block = {BLOCK_K = 16 : i64, BLOCK_M = 64 : i64, BLOCK_N = 64 : i64}, tnx.grid = array<i64: 49, 1, 1>{{.*}}}, {tnx.block = {BLOCK_K = 16 : i64, BLOCK_M = 32 : i64, BLOCK_N = 32 : i64}, tnx.grid = array<i64: 98, 2, 1>{{.*}}}], tnx.cost = {{.*}}, tnx.grid = array<i64: 49, 2, 1>, tnx.kind = "conv"
// GPU-SAME: tnx.num_stages = 2 : i64, tnx.num_warps = 8 : i64, tnx.op_types = ["Conv"], tnx.target = "gpu"
func.func @main(%x: tensor<1x64x56x56xf32>) -> tensor<1x64x56x56xf32> {
  %w = "tnx.constant"() {value = dense<0.5> : tensor<64x64x1x1xf32>} : () -> tensor<64x64x1x1xf32>
  %c = "tnx.conv"(%x, %w) {dilations = array<i64: 1, 1>, group = 1 : i64, kernel_shape = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>, operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x64x56x56xf32>, tensor<64x64x1x1xf32>) -> tensor<1x64x56x56xf32>
  return %c : tensor<1x64x56x56xf32>
}
