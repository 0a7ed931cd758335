"""The conformance runner's outputs: a Markdown report and `{test name: outcome}` JSON."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from tritonnx.conformance.cases import OUTCOMES, Result


@dataclass
class Meta:
    """How the run was made."""

    command: str
    seconds: float
    timeout: float
    model_timeout: float
    jobs: int


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _key(reason: str) -> str:
    """A reason with quoted tensor/node names blanked, to group like refusals."""
    return re.sub(r"'[^']*'", "'…'", reason)


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _header(results: list[Result], meta: Meta) -> list[str]:
    kind_counts = Counter(r.kind for r in results)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# ONNX backend conformance",
        "",
        f"ONNX's own test suite (`onnx.backend.test.case`) run through `tritonnx.conformance.onnx_backend` on {date}.",
        "Regenerate with the command below; the `.json` file beside this one has every test's outcome.",
        "",
        "| | |",
        "|---|---|",
        f"| command | `{meta.command}` |",
    ]
    lines += [f"| {p} | {_version(p)} |" for p in ("tritonnx", "onnx", "triton", "torch", "onnxruntime")]
    lines += [
        f"| tests | {len(results)} ({', '.join(f'{n} {k}' for k, n in sorted(kind_counts.items()))}) |",
        (
            f"| run time | {_duration(meta.seconds)} ({meta.jobs} workers; limit {meta.timeout:g} s per test, "
            f"{meta.model_timeout:g} s per light model) |"
        ),
        "",
    ]
    totals = Counter(r.outcome for r in results)
    kinds = sorted({r.kind for r in results}, key=lambda k: (k != "node", k))
    by_kind = {k: Counter(r.outcome for r in results if r.kind == k) for k in kinds}
    count = {k: sum(c.values()) for k, c in by_kind.items()}
    lines += [
        "## Totals",
        "",
        "| outcome | all tests | share | " + " | ".join(f"{k} tests | share" for k in kinds) + " |",
        "|---|---:|---:|" + "---:|---:|" * len(kinds),
    ]
    lines += [
        f"| {o} | {totals[o]} | {_pct(totals[o], len(results))} | "
        + " | ".join(f"{by_kind[k][o]} | {_pct(by_kind[k][o], count[k])}" for k in kinds)
        + " |"
        for o in OUTCOMES
    ]
    lines += [
        "",
        (
            "`pass`: outputs match within the test's rtol/atol (NaN equals NaN; shapes and dtypes "
            "must match); `fail`: wrong numbers, shapes or dtypes; `unsupported`: tritonnx refused the "
            "model (UnsupportedModelError or CompileError); `crash`: any other exception, a time-out or "
            "a dead worker."
        ),
        "",
    ]
    return lines


def _blockers(results: list[Result]) -> list[str]:
    """Which missing op types (and other refusals) account for the unsupported tests."""
    unsupported = [r for r in results if r.outcome == "unsupported"]
    if not unsupported:
        return []
    needed: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for r in unsupported:
        needed.update(r.missing)
        if len(r.missing) == 1:
            alone[r.missing[0]] += 1
        if not r.missing:
            other[_key(r.reason)] += 1
    lines = [
        "## What the unsupported tests need",
        "",
        (
            "Op types tritonnx reported unsupported, by the number of tests that use them "
            "(*only missing op*: tests that need nothing else)."
        ),
        "",
        "| op type | tests | only missing op |",
        "|---|---:|---:|",
    ]
    lines += [f"| {_cell(op)} | {n} | {alone[op]} |" for op, n in needed.most_common()]
    if other:
        lines += ["", "Other refusals:", "", "| reason | tests |", "|---|---:|"]
        lines += [f"| {_cell(reason)} | {n} |" for reason, n in other.most_common()]
    return lines + [""]


def _per_op(results: list[Result]) -> list[str]:
    table: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        if r.kind != "real":
            table[r.op_type][r.outcome] += 1
    lines = [
        "## Per op type",
        "",
        (
            "A node test counts under the op type of its graph's first default-domain node; an "
            "`_expanded` test (the op's function body) under the op it expands."
        ),
        "",
        "| op type | tests | pass | fail | unsupported | crash |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op in sorted(table, key=str.lower):
        c = table[op]
        lines.append(f"| {_cell(op)} | {sum(c.values())} | " + " | ".join(str(c[o] or "") for o in OUTCOMES) + " |")
    return lines + [""]


def _models(results: list[Result]) -> list[str]:
    real = [r for r in results if r.kind == "real"]
    if not real:
        return []
    lines = [
        "## Light models",
        "",
        (
            "Each light model runs on a seeded N(0,1) input and is checked against the output shipped "
            "with onnx and against onnxruntime."
        ),
        "",
        "| test | outcome | time | reason |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {r.name} | {r.outcome} | {r.seconds:.0f} s | {_cell(r.reason)} |" for r in real]
    return lines + [""]


def _listing(results: list[Result], outcome: str, title: str) -> list[str]:
    chosen = sorted((r for r in results if r.outcome == outcome), key=lambda r: (r.op_type.lower(), r.name))
    lines = [f"## {title} ({len(chosen)})", ""]
    if not chosen:
        return lines + ["None.", ""]
    lines += [f"- `{r.name}` ({r.op_type}): {r.reason}" for r in chosen]
    return lines + [""]


def _internal(results: list[Result]) -> list[str]:
    """CompileErrors that wrap an exception thrown inside a pass: bugs, not refusals."""
    groups: dict[str, list[str]] = defaultdict(list)
    for r in results:
        if r.internal:
            groups[r.internal].append(r.name)
    total = sum(len(v) for v in groups.values())
    lines = [
        f"## Internal errors behind CompileError ({total})",
        "",
        (
            "Counted as `unsupported` above, but the CompileError wraps an exception raised inside a "
            "pass, which points at a bug rather than a missing feature."
        ),
        "",
    ]
    if not groups:
        return lines + ["None.", ""]
    for cause, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- {cause} ({len(names)}): " + ", ".join(f"`{n}`" for n in sorted(names)))
    return lines + [""]


def _unsupported(results: list[Result]) -> list[str]:
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        if r.outcome == "unsupported":
            key = f"needs {', '.join(r.missing)}" if r.missing else _key(r.reason)
            groups[r.op_type][key].append(r.name)
    total = sum(len(v) for g in groups.values() for v in g.values())
    lines = [f"## Unsupported tests by op type ({total})", "", "<details><summary>Show</summary>", ""]
    for op in sorted(groups, key=str.lower):
        n = sum(len(v) for v in groups[op].values())
        lines.append(f"- **{op}** ({n})")
        for key, names in sorted(groups[op].items(), key=lambda kv: -len(kv[1])):
            lines.append(f"  - {key}: " + ", ".join(f"`{name}`" for name in sorted(names)))
    return lines + ["", "</details>", ""]


def markdown(results: list[Result], meta: Meta) -> str:
    """The whole report."""
    parts = [
        _header(results, meta),
        _blockers(results),
        _per_op(results),
        _models(results),
        _listing(results, "fail", "Failing tests"),
        _listing(results, "crash", "Crashing tests"),
        _internal(results),
        _unsupported(results),
    ]
    return "\n".join(line for part in parts for line in part)


def write(md_path: Path, json_path: Path, results: list[Result], meta: Meta) -> None:
    """Writes the Markdown report and the `{test name: outcome}` JSON."""
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(results, meta))
    json_path.write_text(
        json.dumps({r.name: r.outcome for r in sorted(results, key=lambda r: r.name)}, indent=1) + "\n"
    )
