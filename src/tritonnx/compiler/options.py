"""The options of one compilation, as one frozen value: what `tritonnx.compile` hands the
passes (through the compile `Session`, `tritonnx.passes.current_session().options`) and
what, besides the model and tritonnx's own version, decides the artifact, so that its
`key()` is the compile cache's key (`tritonnx.compiler.cache.key`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from tritonnx.errors import CompileError
from tritonnx.target import TARGETS, GPUTarget

PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


@dataclass(frozen=True)
class CompileOptions:
    """targets: GPU target names (`tritonnx.target.TARGETS`) to compile cubins for, in
    order; kernels are tiled for the first one, and for Triton's CPU interpreter when there
    is none. precision: the autocast pass's compute precision (PRECISIONS).
    check_indices: run-time range check of data-dependent Gather indices (the outline
    pass marks them). override_initializers: graph inputs with an initializer that stay
    run-time inputs (sorted). size_hints: (symbol, size) pairs (sorted): the size the tile
    heuristics assume for a dynamic dimension (`tritonnx.symbolic.HINT` for the others).

    Raises CompileError for an unknown target."""

    targets: tuple[str, ...] = ()
    precision: str = "fp32"
    check_indices: bool = True
    override_initializers: tuple[str, ...] = ()
    size_hints: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        for t in self.targets:
            if t not in TARGETS:
                raise CompileError(f"unknown target {t!r}; choose from {', '.join(TARGETS)}.")
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "override_initializers", tuple(sorted(self.override_initializers)))
        hints = dict(self.size_hints)
        for name, n in hints.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise CompileError(f"size hint {name}={n!r}: a size hint is a positive integer.")
        object.__setattr__(self, "size_hints", tuple(sorted(hints.items())))

    @property
    def gpu(self) -> GPUTarget | None:
        """The GPU kernels are tiled for (the first target), None for the CPU interpreter."""
        return TARGETS[self.targets[0]] if self.targets else None

    def key(self) -> str:
        """A stable text of every option (JSON, sorted keys), the same in every process:
        the options' part of the compile cache key."""
        return json.dumps(asdict(self), sort_keys=True)
