"""Device facts, in one table: what tiling, the cost model and the driver know about each
GPU architecture tritonnx compiles for.

`TARGETS` maps a target name ("sm_90") to its frozen `GPUTarget`. A target is an
architecture (what a cubin is compiled for); the figures are those of one product of that
architecture, named in `product`, from the vendor's datasheet (cited per entry). FLOP/s are
dense peaks (no structured sparsity), tensor-core figures for tf32, fp16 and bf16; fp32 is
the FMA (non-tensor-core) peak. Shared memory is the most one thread block may use (the
opt-in maximum, CUDA C Programming Guide, "Technical Specifications per Compute
Capability").
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

KiB, MB = 1024, 10**6


@dataclass(frozen=True)
class GPUTarget:
    """One GPU architecture and the product whose figures stand for it.

    name: the target name, "sm_<capability>"; capability: compute capability as an int
    (90 for 9.0); product: the product the figures are from; sms: streaming
    multiprocessors; dram_bytes_s: DRAM bandwidth, bytes/s; l2_bytes: L2 cache, bytes;
    smem_per_block: shared memory one thread block may use, bytes; fp32, tf32, fp16, bf16:
    peak dense FLOP/s at that precision."""

    name: str
    capability: int
    product: str
    sms: int
    dram_bytes_s: float
    l2_bytes: int
    smem_per_block: int
    fp32: float
    tf32: float
    fp16: float
    bf16: float

    def peak_flops(self, precision: str) -> float:
        """Peak dense FLOP/s for "fp32", "tf32", "fp16" or "bf16". Raises KeyError for others."""
        if precision not in ("fp32", "tf32", "fp16", "bf16"):
            raise KeyError(f"unknown precision {precision!r}")
        return getattr(self, precision)


TARGETS: MappingProxyType[str, GPUTarget] = MappingProxyType(
    {
        # NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM column): FP32 19.5 TFLOPS, TF32
        # 156, BF16/FP16 312 (dense), 2,039 GB/s; A100 whitepaper: 108 SMs, 40 MB L2;
        # compute capability 8.0: 163 KB shared memory per block.
        "sm_80": GPUTarget(
            "sm_80",
            80,
            "A100 SXM 80GB",
            sms=108,
            dram_bytes_s=2.039e12,
            l2_bytes=40 * MB,
            smem_per_block=163 * KiB,
            fp32=19.5e12,
            tf32=156e12,
            fp16=312e12,
            bf16=312e12,
        ),
        # NVIDIA RTX A6000 datasheet: FP32 38.7 TFLOPS, 768 GB/s GDDR6; Ampere GA102 whitepaper
        # (RTX A6000 column): 84 SMs, 6 MB L2, dense tensor TF32 77.4, FP16/BF16 154.8 TFLOPS
        # (FP32 accumulate); compute capability 8.6: 99 KB shared memory per block.
        "sm_86": GPUTarget(
            "sm_86",
            86,
            "RTX A6000",
            sms=84,
            dram_bytes_s=768e9,
            l2_bytes=6 * MB,
            smem_per_block=99 * KiB,
            fp32=38.7e12,
            tf32=77.4e12,
            fp16=154.8e12,
            bf16=154.8e12,
        ),
        # NVIDIA L4 datasheet: FP32 30.3 TFLOPS, TF32 120, FP16/BF16 242 TFLOPS with sparsity
        # (half that dense), 300 GB/s, 48 MB L2; 58 SMs (7,424 CUDA cores, 128 per SM); compute
        # capability 8.9: 99 KB shared memory per block.
        "sm_89": GPUTarget(
            "sm_89",
            89,
            "L4",
            sms=58,
            dram_bytes_s=300e9,
            l2_bytes=48 * MB,
            smem_per_block=99 * KiB,
            fp32=30.3e12,
            tf32=60e12,
            fp16=121e12,
            bf16=121e12,
        ),
        # NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column): FP32 67 TFLOPS, TF32 989,
        # BF16/FP16 1,979 TFLOPS with sparsity (half that dense), 3.35 TB/s; H100 whitepaper:
        # 132 SMs, 50 MB L2; compute capability 9.0: 227 KB shared memory per block.
        "sm_90": GPUTarget(
            "sm_90",
            90,
            "H100 SXM",
            sms=132,
            dram_bytes_s=3.35e12,
            l2_bytes=50 * MB,
            smem_per_block=227 * KiB,
            fp32=67e12,
            tf32=495e12,
            fp16=990e12,
            bf16=990e12,
        ),
    }
)

DEFAULT = "sm_90"  # the target a GPU tiling is for when none is named (tritonnx-opt's `target=gpu`)
ALIASES = MappingProxyType({"H100": "sm_90", "A100": "sm_80", "A6000": "sm_86", "L4": "sm_89"})


def get(name: str) -> GPUTarget:
    """The GPUTarget of a target name ("sm_90") or a product alias ("H100", ALIASES).
    Raises KeyError naming the choices for anything else."""
    key = ALIASES.get(name, name)
    if key not in TARGETS:
        raise KeyError(f"unknown GPU target {name!r}; choose from {', '.join([*TARGETS, *ALIASES])}")
    return TARGETS[key]
