// Attention-23 as importers/attention.py expands it (GQA: 4 query heads over 2 key/value
// heads; a boolean mask padded from 5 to 6 keys; is_causal as a constant [4, 6] mask; the
// importer's output for such a model, locations left out): one flash-attention kernel. K and
// V are repeated over the query heads through views, so the kernel reads them in place; the
// full-shape padded mask is not taken for the scores (kernel_info.attention_ops).
// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize,fuse,outline | filecheck %s --check-prefix=OUTLINE
// RUN: tritonnx-opt %s --pass-pipeline=tnx-canonicalize,fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton --print-triton | filecheck %s --check-prefix=TRITON

// OUTLINE-LABEL: func.func @main
// OUTLINE: call @attention_mul_where_softmax_4x16_f32_{{[0-9a-f]+}}
// OUTLINE-NOT: call @
// OUTLINE: func.func private @attention_mul_where_softmax_4x16_f32_{{[0-9a-f]+}}
// OUTLINE-SAME: tnx.kind = "attention"

// The kernel: a loop over the keys, K's head from the query head (h // 2, through the
// Reshape of the Expand), both masks applied to each tile of scores, the online softmax.
// TRITON: def attention_mul_where_softmax_4x16_f32_{{[0-9a-f]+}}(
// TRITON: for k0 in range(0, 6, BLOCK_N):
// TRITON: k = tl.load(k_ptr + (t8 // 192 * 96 + t8 // 16 % 6 * 16 + t8 % 16), mask=mask_k, other=0.0)
// TRITON: where_condition = tl.load(where_condition_ptr + (offs_m * 6 + t4), mask=mask_s, other=0)
// TRITON: pad_data = tl.load(pad_data_ptr + (t0 * 20 + offs_m * 5 + t4), mask=mask_s & t9, other=0)
// TRITON: tl.where(where_condition, tl.where(tl.where(t9, pad_data, False), qk * mul_b, where_y), where_y)
// TRITON: m_new = tl.maximum(m_i,
// TRITON: acc = tl.dot(p, v_tile, acc * alpha[:, None]
// TRITON-NOT: @triton.jit
func.func @main(%arg0: tensor<1x4x4x16xf32>, %arg1: tensor<1x2x6x16xf32>, %arg2: tensor<1x2x6x16xf32>, %arg3: tensor<1x4x4x5xi1>) -> tensor<1x4x4x16xf32> {
  %0 = "tnx.constant"() {value = dense<2> : tensor<1xi64>} : () -> tensor<1xi64>
  %1 = "tnx.constant"() {value = dense<[1, 2, 2, 6, 16]> : tensor<5xi64>} : () -> tensor<5xi64>
  %2 = "tnx.constant"() {value = dense<[1, 4, 6, 16]> : tensor<4xi64>} : () -> tensor<4xi64>
  %3 = "tnx.constant"() {value = dense<2> : tensor<1xi64>} : () -> tensor<1xi64>
  %4 = "tnx.constant"() {value = dense<[1, 2, 2, 6, 16]> : tensor<5xi64>} : () -> tensor<5xi64>
  %5 = "tnx.constant"() {value = dense<[1, 4, 6, 16]> : tensor<4xi64>} : () -> tensor<4xi64>
  %6 = "tnx.constant"() {value = dense<2.500000e-01> : tensor<f32>} : () -> tensor<f32>
  %7 = "tnx.constant"() {value = dense<0xFF800000> : tensor<f32>} : () -> tensor<f32>
  %8 = "tnx.constant"() {value = dense<false> : tensor<i1>} : () -> tensor<i1>
  %9 = "tnx.constant"() {value = dense<[0, 0, 0, 0, 0, 0, 0, 1]> : tensor<8xi64>} : () -> tensor<8xi64>
  %10 = "tnx.constant"() {value = dense<[[true, false, false, false, false, false], [true, true, false, false, false, false], [true, true, true, false, false, false], [true, true, true, true, false, false]]> : tensor<4x6xi1>} : () -> tensor<4x6xi1>
  %11 = "tnx.unsqueeze"(%arg1, %0) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<1x2x6x16xf32>, tensor<1xi64>) -> tensor<1x2x1x6x16xf32>
  %12 = "tnx.expand"(%11, %1) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<1x2x1x6x16xf32>, tensor<5xi64>) -> tensor<1x2x2x6x16xf32>
  %13 = "tnx.reshape"(%12, %2) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<1x2x2x6x16xf32>, tensor<4xi64>) -> tensor<1x4x6x16xf32>
  %14 = "tnx.unsqueeze"(%arg2, %3) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<1x2x6x16xf32>, tensor<1xi64>) -> tensor<1x2x1x6x16xf32>
  %15 = "tnx.expand"(%14, %4) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<1x2x1x6x16xf32>, tensor<5xi64>) -> tensor<1x2x2x6x16xf32>
  %16 = "tnx.reshape"(%15, %5) {operandSegmentSizes = array<i32: 1, 1>} : (tensor<1x2x2x6x16xf32>, tensor<4xi64>) -> tensor<1x4x6x16xf32>
  %17 = "tnx.transpose"(%13) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x4x6x16xf32>) -> tensor<1x4x16x6xf32>
  %18 = "tnx.mat_mul"(%arg0, %17) : (tensor<1x4x4x16xf32>, tensor<1x4x16x6xf32>) -> tensor<1x4x4x6xf32>
  %19 = "tnx.mul"(%18, %6) : (tensor<1x4x4x6xf32>, tensor<f32>) -> tensor<1x4x4x6xf32>
  %20 = "tnx.pad"(%arg3, %9, %8) {operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<1x4x4x5xi1>, tensor<8xi64>, tensor<i1>) -> tensor<1x4x4x6xi1>
  %21 = "tnx.where"(%20, %19, %7) : (tensor<1x4x4x6xi1>, tensor<1x4x4x6xf32>, tensor<f32>) -> tensor<1x4x4x6xf32>
  %22 = "tnx.where"(%10, %21, %7) : (tensor<4x6xi1>, tensor<1x4x4x6xf32>, tensor<f32>) -> tensor<1x4x4x6xf32>
  %23 = "tnx.softmax"(%22) {axis = 3 : i64} : (tensor<1x4x4x6xf32>) -> tensor<1x4x4x6xf32>
  %24 = "tnx.mat_mul"(%23, %16) : (tensor<1x4x4x6xf32>, tensor<1x4x6x16xf32>) -> tensor<1x4x4x16xf32>
  return %24 : tensor<1x4x4x16xf32>
}
