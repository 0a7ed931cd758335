"""The tnx (graph) and tile (kernel) dialects, defined in IRDL, and thin Python builders.

`make_context()` returns an `mlir.ir.Context` with both dialects loaded. The IRDL files
beside this module are the single source of truth for op names and operand names.
"""

from __future__ import annotations

import functools
from pathlib import Path

from mlir import ir
from mlir.dialects import irdl
from mlir.dialects._ods_common import _cext

# The bindings look up a Python module per dialect each time they wrap an op: ours are
# tritonnx.dialects.python.tnx and .tile (empty: ops stay generic).
if "tritonnx.dialects.python" not in _cext.globals.dialect_search_modules:
    _cext.globals.append_dialect_search_prefix("tritonnx.dialects.python")

_HERE = Path(__file__).parent
IRDL_FILES = (_HERE / "tnx.irdl.mlir", _HERE / "tile.irdl.mlir")


def onnx_op_type(op_name: str) -> str:
    """The ONNX op type of a tnx op name: `tnx.batch_normalization` -> `BatchNormalization`."""
    from tritonnx.dialects.ops import ONNX_NAME

    return ONNX_NAME.get(op_name, op_name)


def make_context() -> ir.Context:
    """A new MLIR context with the tnx and tile dialects registered."""
    ctx = ir.Context()
    with ctx, ir.Location.unknown():
        for path in IRDL_FILES:
            irdl.load_dialects(ir.Module.parse(path.read_text()))
    return ctx


@functools.cache
def operand_specs() -> dict[str, tuple[tuple[str, bool], ...]]:
    """`{"tnx.conv": (("X", False), ("W", False), ("B", True)), ...}`: operand names and
    whether each is optional, read from the IRDL definitions."""
    specs: dict[str, tuple[tuple[str, bool], ...]] = {}
    with ir.Context(), ir.Location.unknown():
        for path in IRDL_FILES:
            module = ir.Module.parse(path.read_text())
            for dialect in module.body.operations:
                prefix = ir.StringAttr(dialect.attributes["sym_name"]).value
                for op in dialect.regions[0].blocks[0].operations:
                    name = f"{prefix}.{ir.StringAttr(op.attributes['sym_name']).value}"
                    entries: tuple[tuple[str, bool], ...] = ()
                    for inner in op.regions[0].blocks[0].operations:
                        if inner.name == "irdl.operands":
                            names = [ir.StringAttr(a).value for a in ir.ArrayAttr(inner.attributes["names"])]
                            kinds = str(inner.attributes["variadicity"])
                            flags = [
                                k.strip() == "optional"
                                for k in kinds[kinds.index("[") + 1 : kinds.rindex("]")].split(",")
                            ]
                            entries = tuple(zip(names, flags))
                    specs[name] = entries
    return specs
