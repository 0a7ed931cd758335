"""Index checks at run time: the check buffers of a plan (`plan["checks"]`), zeroed before
a run and read after its last launch.

A Gather or GatherElements whose indices come from data masks its loads with the indices'
validity and, where an index is out of range, stores 1 and the index into its int64[2]
check buffer (`tritonnx.passes.index_maps.checked_index`). `buffers` gives every check
buffer of a run a view of one zeroed tensor; `verify` reads them back together and raises
IndexOutOfRangeError (an IndexError) for the first check, in launch order, that saw a bad
index, naming the node, its op type, the index and the valid range [-n, n-1], as
onnxruntime refuses such indices. Which bad index is reported when a run has several is
unspecified.

Cost on a GPU, per run of a plan with C checks: one memset of 16*C bytes before the first
launch, and after the last a gather of the C buffers into one tensor (one tiny kernel)
and one 16*C-byte device-to-host copy of it; the copy waits for the run to
finish (a synchronization, which reading the outputs back to the host does anyway; a
caller that keeps torch CUDA outputs on the device loses the overlap of the next run's
host work with this one). In the kernels: two compares, an and and a select per gathered
element, plus an xor and two stores predicated off unless an index is bad. Compiling with
`check_indices=False` (CLI `--no-index-check`) drops the stores, the memset and the copy;
loads stay masked, so memory stays safe, and the result for an out-of-range index is
unspecified.
"""

from __future__ import annotations

from tritonnx.errors import IndexOutOfRangeError


def buffers(plan: dict, device) -> dict:
    """{check buffer: a zeroed int64[2] view} for one run of `plan` (empty without checks)."""
    import torch

    checks = plan.get("checks") or []
    if not checks:
        return {}
    flags = torch.zeros((len(checks), 2), dtype=torch.int64, device=device)
    return {c["buffer"]: flags[i] for i, c in enumerate(checks)}


def verify(plan: dict, env: dict) -> None:
    """Raises IndexOutOfRangeError for the first check of `plan` whose buffer in `env` reports an
    out-of-range index (one read of all check buffers together)."""
    checks = plan.get("checks") or []
    if not checks:
        return
    import torch

    words = torch.stack([env[c["buffer"]] for c in checks]).cpu().tolist()
    for check, (bad, index) in zip(checks, words):
        if bad:  # word 0: 1 + the position in an index tuple (GatherND, ScatterND), else 1
            n, axis = check["size"], check["axis"]
            if "sizes" in check:
                n, axis = check["sizes"][bad - 1], axis + bad - 1
            raise IndexOutOfRangeError(
                f"node '{check['node']}' ({check['op_type']}): index {index} is out of range "
                f"[{-n}, {n - 1}] for axis {axis} of size {n} (indices element out of "
                "data bounds)."
            )
