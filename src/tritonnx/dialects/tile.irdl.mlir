// The tile dialect: the body of one Triton program, on tiles (ranked tensors of a
// static block shape). Arithmetic uses upstream `arith` and `math` on tensors; loops
// use `scf.for`. A kernel is a `func.func` whose arguments are whole buffers
// (inputs first, then outputs); `load` and `store` address them by element offset.
irdl.dialect @tile {
  // The program's index along grid axis `axis` (an i32 or i64 scalar: the kernel's index type).
  irdl.operation @program_id {
    %r = irdl.any
    irdl.results(id: %r)
  }
  // The run-time value of the model's symbolic size `symbol` (a scalar kernel argument of the index type).
  irdl.operation @symbol {
    %r = irdl.any
    irdl.results(value: %r)
  }
  // [start, end) as a 1-D tile of the index type (i32 or i64); end - start is a power of two.
  // `block` names the constexpr block size `end` is, when it is one (tl.arange(0, BLOCK_M)).
  irdl.operation @range {
    %r = irdl.any
    irdl.results(result: %r)
  }
  // A block size: the kernel's `tl.constexpr` parameter `name` (BLOCK_M, ...), whose value
  // in this lowering is `value`; an i32/i64 scalar or an index (a loop step).
  irdl.operation @constexpr {
    %r = irdl.any
    irdl.results(result: %r)
  }
  // A tile of shape `dims` (block names or sizes) filled with `value`: an accumulator's or a
  // running maximum's initial value (Triton's tl.zeros / tl.full).
  irdl.operation @full {
    %r = irdl.any
    irdl.results(result: %r)
  }
  // A scalar repeated over a tile of shape `dims` (block names or sizes).
  irdl.operation @splat {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(value: %0)
    irdl.results(result: %r)
  }
  // Inserts a unit dimension at `axis`.
  irdl.operation @expand_dims {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(src: %0)
    irdl.results(result: %r)
  }
  // Broadcasts unit dimensions to the result shape, `dims` (block names or sizes).
  irdl.operation @broadcast {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(src: %0)
    irdl.results(result: %r)
  }
  // Converts element types where `arith` cannot: to or from unsigned integers (which
  // arith, being signless, does not have). Values convert as Triton's `.to()` does.
  irdl.operation @cast {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(src: %0)
    irdl.results(result: %r)
  }
  // Gathers buffer[offsets] where mask, `other` elsewhere.
  irdl.operation @load {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %r = irdl.any
    irdl.operands(buffer: %0, offsets: %1, mask: %2)
    irdl.results(result: %r)
  }
  // Scatters value to buffer[offsets] where mask.
  irdl.operation @store {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %3 = irdl.any
    irdl.operands(buffer: %0, offsets: %1, value: %2, mask: %3)
  }
  // acc + a @ b on [M, K] x [K, N] tiles, accumulating in f32.
  irdl.operation @dot {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1, acc: %2)
    irdl.results(result: %r)
  }
  // Inclusive prefix scan along `axis` with `kind` (sum).
  irdl.operation @scan {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(src: %0)
    irdl.results(result: %r)
  }
  // Reduces `axis` with `kind` (sum, max, min, prod).
  irdl.operation @reduce {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(src: %0)
    irdl.results(result: %r)
  }
}
