"""Launching ahead-of-time cubins without compiling again.

Triton's `CompiledKernel` is built from the kernel's source (for the launcher's argument
list), the cubin and the metadata JSON that `triton.compile` produced; its `[grid](...)`
launches the binary. Used only on a GPU whose compute capability matches the target.
"""

from __future__ import annotations

from pathlib import Path


def attrs(divisible_by_16) -> dict:
    """Triton's argument attributes for the arguments (indices) whose values the runtime
    guarantees divisible by 16: pointers 16-byte aligned, so loads and stores vectorize
    (`ld.global.v4`), as Triton's JIT specializes when it sees aligned tensors. The same
    for compiling a cubin (`tritonnx.compiler.aot`) and for loading it."""
    return {(i,): [["tt.divisibility", 16]] for i in divisible_by_16}


def load(
    fn,
    kernel_dir: Path,
    name: str,
    target: str,
    signature: list[str],
    constexprs: dict | None = None,
    divisible_by_16=(),
):
    """A launchable `CompiledKernel` for `kernels/<name>.<target>.cubin`; `fn` is the kernel's
    @triton.jit function (for the launcher's argument list), `constexprs` the block sizes
    the binary was compiled for. The caller has checked the files' SHA-256
    (`tritonnx.runtime.format`)."""
    from triton.compiler import ASTSource
    from triton.compiler.compiler import CompiledKernel

    src = ASTSource(fn, dict(zip(fn.arg_names, signature)), constexprs or {}, attrs(divisible_by_16))
    group = {
        f"{name}.json": str(kernel_dir / f"{name}.{target}.json"),
        f"{name}.cubin": str(kernel_dir / f"{name}.{target}.cubin"),
    }
    return CompiledKernel(src, group, f"{name}-{target}")


def current_target() -> str:
    """`sm_XY` of the current CUDA device."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}"
