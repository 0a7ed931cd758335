"""Launching ahead-of-time cubins without compiling again.

Triton's `CompiledKernel` is built from the kernel's source (for the launcher's argument
list), the cubin and the metadata JSON that `triton.compile` produced; its `[grid](...)`
launches the binary. Used only on a GPU whose compute capability matches the target.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path


def load(kernel_dir: Path, name: str, target: str, signature: list[str]):
    """A launchable `CompiledKernel` for `kernels/<name>.<target>.cubin`."""
    from triton.compiler import ASTSource
    from triton.compiler.compiler import CompiledKernel

    spec = importlib.util.spec_from_file_location(f"tritonnx_cubin_{name}", kernel_dir / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, name)
    src = ASTSource(fn, dict(zip(fn.arg_names, signature)), {})
    group = {f"{name}.json": str(kernel_dir / f"{name}.{target}.json"),
             f"{name}.cubin": str(kernel_dir / f"{name}.{target}.cubin")}
    return CompiledKernel(src, group, f"{name}-{target}")


def current_target() -> str:
    """`sm_XY` of the current CUDA device."""
    import torch
    major, minor = torch.cuda.get_device_capability()
    return f"sm_{major}{minor}"
