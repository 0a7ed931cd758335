"""multi-output: a lone pointwise group becomes a second output of the kernel that produces its input.

Such a group stands alone because its input feeds other kernels too. The kernel stores its
own result and then the pointwise group's, computed from the tile it holds in registers:
one launch and one read of the value fewer. The pointwise group may read the producer's
output directly or through Slices with unit steps (Inception's branch of a merged Conv):
its output then covers a window of the producer's index space.
Conditions: it reads one producer group, only there, at its own index (same shape, no
broadcast); only its last value leaves it; its other inputs are constants or defined before
the producer's kernel, so it can move up to it (a kernel is called at its group's last op).
The groups are read from the IR (`tnx.group`, `tnx.fusion`: partition's), the moved ops
get the code "multi_output".
"""

from __future__ import annotations

from mlir import ir

from tritonnx.dialects.builders import attrs_of, producer, shape_of
from tritonnx.passes import functions, ops
from tritonnx.passes.fusion import NO_EPILOGUE, VIEWS, Group, group_of, groups_of, mark, node_name

NAME = "multi-output"


def run(module: ir.Operation, pass_=None) -> None:
    for fn in functions(module):
        if "sym_visibility" not in fn.attributes:  # kernels are already outlined
            _second_outputs(fn.regions[0].blocks[0])


def _second_outputs(block: ir.Block) -> None:
    """Makes each standing pointwise group, in block order of the op that started it, a
    second output of its host group where `_host` finds one."""
    groups = groups_of(block)
    start = {op: i for i, op in enumerate(ops(block))}
    for p in sorted((g for g in groups.values() if g.kind == "pointwise"), key=lambda g: start[g.root]):
        found = _host(block, p, groups)
        if found is None:
            continue
        host, movable, through_slices = found
        how = " through a Slice" if through_slices else ""
        why = (
            f"second output of {node_name(host.tail)}'s kernel: reads its result{how} at the same index, "
            "which other kernels read too (multi-output kernel: one launch and one read fewer)"
        )
        pos = {op: i for i, op in enumerate(ops(block))}
        last = host.tail
        # a group's members in block order: the ops it reads must come first
        for op in movable + sorted(p.members, key=lambda m: pos[m]):
            op.move_after(last)
            last = op
        for m in p.members:
            mark(m, host.id, "multi_output", why)
            host.members.append(m)
        host.outputs.append(p.tail.results[0])
        host.tail = p.tail
        del groups[p.id]


def _host(block: ir.Block, p: Group, groups: dict[int, Group]) -> tuple[Group, list[ir.Operation], bool] | None:
    """(the group `p` can be a second output of, the ops that move up with `p` in order:
    Slices it reads through and constants defined after the host's kernel, whether it reads
    through Slices), or None."""
    out = p.tail.results[0]
    inside = {r for m in p.members for r in m.results}
    if any(r != out and any(group_of(u.owner.operation) != p.id for u in r.uses) for r in inside):
        return None
    hosts, windows, external, ok = set(), set(), [], True
    slices: list[ir.Operation] = []
    for m in p.members:
        for x in m.operands:
            if x in inside:
                continue
            base, chain = _through_slices(x)
            h = group_of(producer(base))
            if h is not None and h != p.id:
                if (
                    base not in groups[h].outputs
                    or not _read_elsewhere(base, p.id)
                    or groups[h].tail.name in NO_EPILOGUE
                    or shape_of(x) != shape_of(m.results[0])
                    or shape_of(x) != shape_of(out)
                ):
                    ok = False
                hosts.add(h)
                windows.add(tuple(str(attrs_of(s_)["starts"]) for s_ in chain))
                slices += [s_ for s_ in reversed(chain) if all(s_ != t for t in slices)]
            elif _reads_group_through_views(x):
                ok = False  # the kernel would hold the value at another index than the view needs
            external.append(x)
    if not ok or len(hosts) != 1 or len(windows) != 1:
        return None
    host = groups[hosts.pop()]
    pos = {op: i for i, op in enumerate(ops(block))}  # ops moved by earlier merges
    at = pos[host.tail]
    movable = [s_ for s_ in slices if pos[s_] > at]  # move up with the group, in order
    for x in external:
        src = producer(x)
        if src is None or group_of(src) == host.id or pos[src] < at or any(src == s_ for s_ in movable):
            continue
        if src.name != "tnx.constant":
            return None
        if all(src != c for c in movable):
            movable.insert(0, src)
    return host, movable, bool(slices)


def _read_elsewhere(value: ir.Value, group: int) -> bool:
    """Whether something besides `group` reads `value`: another group, the graph's return,
    directly or through ungrouped views."""
    for use in value.uses:
        user = use.owner.operation
        if user.name in VIEWS and group_of(user) is None:
            if _read_elsewhere(user.results[0], group):
                return True
        elif group_of(user) != group:
            return True
    return False


def _through_slices(value: ir.Value) -> tuple[ir.Value, list[ir.Operation]]:
    """(the value under a chain of ungrouped, static, unit-step Slices ending at `value`, the
    Slices from `value` down)."""
    chain: list[ir.Operation] = []
    while True:
        src = producer(value)
        if (
            src is None
            or src.name != "tnx.slice"
            or group_of(src) is not None
            or len(src.operands) != 1
            or any(s != 1 for s in attrs_of(src)["steps"])
        ):
            return value, chain
        chain.append(src)
        value = src.operands[0]


def _reads_group_through_views(value: ir.Value) -> bool:
    """Whether `value` is an ungrouped view of (a view of ...) a value some group computes."""
    src = producer(value)
    if src is None or src.name not in VIEWS or group_of(src) is not None:
        return False
    return any(group_of(producer(x)) is not None or _reads_group_through_views(x) for x in src.operands)
