// RUN: tritonnx-opt %s --pass-pipeline=fuse,outline,choose-blocks,lower-to-tile,canonicalize,cse,lower-to-triton --print-triton | filecheck %s

// BitCast-26 is an `arith.bitcast` of the source's own width, printed as Triton's
// `.to(T, bitcast=True)`; an unsigned source held in a wider compute type is narrowed back
// first (exact), and bool, one byte of 0 or 1, converts by value. Atan-22 is Cephes'
// range reduction and polynomial on `tl` core ops; Mod-13 on floats is C's fmod
// (`arith.remf`, Triton's `%`), fmod=0 then takes the divisor's sign, a zero one too.
// CHECK: func.func private @[[BC:bit_cast_i32_[0-9a-f]+]]
// CHECK: arith.bitcast %{{.*}} : tensor<8xf32> to tensor<8xi32>
// CHECK: func.func private @[[AT:atan_f32_[0-9a-f]+]]
// CHECK: func.func private @[[MOD:mod_f32_[0-9a-f]+]]
// CHECK: arith.remf
// CHECK: Triton source of @[[BC]]
// CHECK: tl.store(y_ptr + offs, bit_cast_input.to(tl.int32, bitcast=True), mask=mask)
// CHECK: Triton source of @[[AT]]
// CHECK: t1 = t0 > 2.4142136573791504
// CHECK: tl.where(t1, -1.0 / t0, tl.where(t2, (t0 - 1.0) / (t0 + 1.0), t0))
// CHECK: tl.where(atan_input == 0.0, atan_input, tl.where(atan_input < 0.0, -t6, t6))
// CHECK: Triton source of @[[MOD]]
// CHECK: t0 = mod_a % mod_b
// CHECK: tl.where(t2 == 0.0, tl.where(t1, -0.0, 0.0), t2)
// CHECK: Triton source of @bit_cast_i16_
// CHECK: bit_cast_input.to(tl.int32).to(tl.int16)
// CHECK-NOT: bitcast=True
// CHECK: Triton source of @bit_cast_u8_
// CHECK: tl.store(y_ptr + offs, bit_cast_input.to(tl.uint8), mask=mask)
func.func @main(%x: tensor<8xf32>, %y: tensor<8xf32>, %u: tensor<8xui16>, %k: tensor<8xi1>) -> (tensor<8xi32>, tensor<8xf32>, tensor<8xf32>, tensor<8xi16>, tensor<8xui8>) {
  %b = "tnx.bit_cast"(%x) {to = 6 : i64} : (tensor<8xf32>) -> tensor<8xi32>
  %a = "tnx.atan"(%x) : (tensor<8xf32>) -> tensor<8xf32>
  %m = "tnx.mod"(%x, %y) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %s = "tnx.bit_cast"(%u) {to = 5 : i64} : (tensor<8xui16>) -> tensor<8xi16>
  %q = "tnx.bit_cast"(%k) {to = 2 : i64} : (tensor<8xi1>) -> tensor<8xui8>
  return %b, %a, %m, %s, %q : tensor<8xi32>, tensor<8xf32>, tensor<8xf32>, tensor<8xi16>, tensor<8xui8>
}
