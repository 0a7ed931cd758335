// The tnx dialect: one op per ONNX operator, at the graph level.
// Operands are ranked tensors; ONNX attributes are carried as MLIR attributes with the
// spec's names (operand names lower-cased, as IRDL requires). Each operand has its own
// constraint variable (IRDL binds a variable used twice to one type). An optional
// operand is marked `optional`.
irdl.dialect @tnx {
  // A weight or constant: `value` holds a dense or dense_resource attribute.
  irdl.operation @constant {
    %r = irdl.any
    irdl.results(output: %r)
  }
  // Conv-11: NCHW convolution with groups, strides, pads, dilations.
  irdl.operation @conv {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0, w: %1, b: optional %2)
    irdl.results(output: %r)
  }
  // BatchNormalization-15, inference mode.
  irdl.operation @batch_normalization {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %3 = irdl.any
    %4 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0, scale: %1, b: %2, input_mean: %3, input_var: %4)
    irdl.results(output: %r)
  }
  // Relu-14.
  irdl.operation @relu {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0)
    irdl.results(output: %r)
  }
  // Clip-13.
  irdl.operation @clip {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %r = irdl.any
    irdl.operands(input: %0, min: optional %1, max: optional %2)
    irdl.results(output: %r)
  }
  // Sigmoid-13.
  irdl.operation @sigmoid {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0)
    irdl.results(output: %r)
  }
  // Add-14, NumPy broadcasting.
  irdl.operation @add {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1)
    irdl.results(output: %r)
  }
  // Sub-14, NumPy broadcasting.
  irdl.operation @sub {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1)
    irdl.results(output: %r)
  }
  // Mul-14, NumPy broadcasting.
  irdl.operation @mul {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1)
    irdl.results(output: %r)
  }
  // Div-14, NumPy broadcasting.
  irdl.operation @div {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1)
    irdl.results(output: %r)
  }
  // MaxPool-12.
  irdl.operation @max_pool {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0)
    irdl.results(output: %r)
  }
  // AveragePool-11.
  irdl.operation @average_pool {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0)
    irdl.results(output: %r)
  }
  // GlobalAveragePool-1.
  irdl.operation @global_average_pool {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(x: %0)
    irdl.results(output: %r)
  }
  // Gemm-13: alpha * A' B' + beta * C.
  irdl.operation @gemm {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1, c: optional %2)
    irdl.results(output: %r)
  }
  // MatMul-13 (2-D operands).
  irdl.operation @mat_mul {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(a: %0, b: %1)
    irdl.results(output: %r)
  }
  // Flatten-13: a view.
  irdl.operation @flatten {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(input: %0)
    irdl.results(output: %r)
  }
  // Reshape-14: a view. Canonical form has no `shape` operand: the result type says it.
  irdl.operation @reshape {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0, shape: optional %1)
    irdl.results(output: %r)
  }
  // Transpose-13: a view.
  irdl.operation @transpose {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0)
    irdl.results(output: %r)
  }
  // Concat-13 of two tensors; the importer folds N-ary Concat into a chain.
  irdl.operation @concat {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(head: %0, tail: %1)
    irdl.results(output: %r)
  }
  // Softmax-13 along one axis.
  irdl.operation @softmax {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(input: %0)
    irdl.results(output: %r)
  }
  // Identity-16.
  irdl.operation @identity {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(input: %0)
    irdl.results(output: %r)
  }
  // Dropout-13, inference mode: the identity.
  irdl.operation @dropout {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0, ratio: optional %1, training_mode: optional %2)
    irdl.results(output: %r)
  }
  // ConstantOfShape-9.
  irdl.operation @constant_of_shape {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(input: %0)
    irdl.results(output: %r)
  }
  // Shape-15.
  irdl.operation @shape {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0)
    irdl.results(output: %r)
  }
  // Gather-13.
  irdl.operation @gather {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0, indices: %1)
    irdl.results(output: %r)
  }
  // Unsqueeze-13: a view.
  irdl.operation @unsqueeze {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0, axes: optional %1)
    irdl.results(output: %r)
  }
  // Squeeze-13: a view.
  irdl.operation @squeeze {
    %0 = irdl.any
    %1 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0, axes: optional %1)
    irdl.results(output: %r)
  }
  // Slice-13.
  irdl.operation @slice {
    %0 = irdl.any
    %1 = irdl.any
    %2 = irdl.any
    %3 = irdl.any
    %4 = irdl.any
    %r = irdl.any
    irdl.operands(data: %0, starts: %1, ends: %2, axes: optional %3, steps: optional %4)
    irdl.results(output: %r)
  }
  // Cast-13.
  irdl.operation @cast {
    %0 = irdl.any
    %r = irdl.any
    irdl.operands(input: %0)
    irdl.results(output: %r)
  }
}
