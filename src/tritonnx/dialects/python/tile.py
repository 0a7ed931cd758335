"""The tile dialect's Python module for MLIR's bindings (ops stay generic)."""
