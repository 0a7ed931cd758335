"""The artifact format: what makes a directory a tritonnx artifact, and how it is checked.

An artifact is a directory with `plan.json` and the files it lists:

  plan.json            {"format": "tritonnx-artifact", "version": VERSION, "files": {path:
                       SHA-256 hex digest}, "inputs", "outputs", "buffers", "launches", ...}
  kernels/NAME.py      the Triton source of each kernel
  kernels/NAME.TARGET.cubin, kernels/NAME.TARGET.json   ahead-of-time binaries
  weights.safetensors  the weights
  model.onnx           the source model (for `tritonnx run --check`)
  model.onnx.data      its external data, for a model that has some (every model over 2 GB)

`format` is the marker by which tritonnx recognizes a directory it may replace (an output
path holding anything else is refused). The runtime checks `version`, validates the plan
(`validate`) and compares every file's SHA-256 with `files` before it imports a kernel
(`read_verified`: the bytes checked are the bytes run) or maps the weights (`verify_file`,
in chunks: safetensors then maps the file, so a model's weights are never read into memory
whole). The digests catch a damaged or edited artifact; they do not
make a foreign artifact safe: loading one runs its kernels' Python code, as loading a pickle
does, so load artifacts only from a trusted source.

Sizes in the plan are ints or integer expressions over the dynamic symbols ("batch*seq*64",
"(-(-(batch) // 2))"), evaluated by `evaluate`, an `ast` walk that admits only integer
literals, symbol names and + - * // % and comparisons: file contents are never `eval`ed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import keyword
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from tritonnx.errors import ArtifactError

FORMAT = "tritonnx-artifact"
VERSION = 2
DTYPES = {
    "float32",
    "float16",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
}
BUFFER_KINDS = {"input", "weight", "intermediate", "output", "check"}
_BLOCK = re.compile(r"BLOCK(_[A-Z])?")  # the constexpr parameters lower-to-triton prints
MAX_BLOCK = 1 << 20
_FILE = re.compile(
    r"kernels/[A-Za-z_]\w*\.py|kernels/[A-Za-z_]\w*\.sm_\d+\.(cubin|json)|weights\.safetensors|model\.onnx(\.data)?"
    r"|(steps/\d+(/(then_branch|else_branch|body))?/)+plan\.json",  # a program's sub-artifacts
    re.ASCII,
)
_STEP_DIR = re.compile(r"steps/\d+(/(then_branch|else_branch|body))?", re.ASCII)
STEP_KINDS = {
    "graph": (),
    "if": ("then_branch", "else_branch"),
    "loop": ("body",),
    "scan": ("body",),
    "host": (),
    "bind": (),
}
# a program's host steps (`tritonnx.runtime.program`): ops over sequences and optionals, and
# ops whose output size depends on the values
HOST_OPS = {
    "SequenceEmpty",
    "SequenceConstruct",
    "SequenceAt",
    "SequenceInsert",
    "SequenceErase",
    "SequenceLength",
    "SplitToSequence",
    "ConcatFromSequence",
    "Optional",
    "OptionalHasElement",
    "OptionalGetElement",
    "NonZero",
    "Compress",
    "Unique",
    "NonMaxSuppression",
}
_CHUNK = 1 << 22


def sha256_file(path: Path) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def manifest(root: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every file of an artifact directory but plan.json."""
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "plan.json"
    }


def is_artifact(path: Path) -> bool:
    """True when `path` is a directory whose plan.json carries tritonnx's format marker
    (whatever its version): a directory tritonnx wrote and may replace."""
    plan = Path(path) / "plan.json"
    try:
        return plan.is_file() and json.loads(plan.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def load_plan(path: Path) -> dict:
    """The validated plan of artifact directory `path`. Raises ArtifactError saying what is
    wrong: no plan.json, not JSON, no format marker, another format version, or a plan that
    does not validate."""
    path = Path(path)
    file = path / "plan.json"
    if path.is_file():
        raise ArtifactError(f"{path} is a file; an artifact is a directory written by `tritonnx compile`.")
    if not file.is_file():
        raise ArtifactError(f"{path} is not a tritonnx artifact (no plan.json).")
    try:
        plan = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{file} is damaged (not JSON: {e}); compile the model again.") from None
    if not isinstance(plan, dict) or plan.get("format") != FORMAT:
        raise ArtifactError(f'{file} is not a tritonnx plan (no "format": "{FORMAT}" marker).')
    if plan.get("version") != VERSION:
        raise ArtifactError(
            f"{file} has artifact format version {plan.get('version')!r}; this tritonnx reads "
            f"version {VERSION}. Compile the model again with this tritonnx."
        )
    validate(plan, str(file))
    return plan


def _identifier(name) -> bool:
    return isinstance(name, str) and name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


def validate(plan: dict, where: str = "plan.json") -> None:
    """Checks the structure the runtime relies on: kernel names are identifiers whose
    source the plan lists, every buffer a launch, input or output names exists, shapes are
    lists of non-negative ints or size expressions over the plan's symbols, dtypes are
    known, the memory plan places only known buffers inside its arena, and `files` names
    only artifact paths with SHA-256 digests. Raises ArtifactError naming the first fault."""

    def fail(what: str) -> NoReturn:
        raise ArtifactError(f"{where}: {what}; the artifact is damaged or was not written by tritonnx.")

    files = plan.get("files")
    if not isinstance(files, dict):
        fail('no "files" digests')
    for rel, digest in files.items():
        if not (isinstance(rel, str) and _FILE.fullmatch(rel)):
            fail(f"file {rel!r} is not an artifact path")
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            fail(f"file {rel!r} has no SHA-256 digest")
    if plan.get("program"):
        _validate_program(plan, files, fail)
        return
    symbols = plan.get("symbols") or {}
    if not isinstance(symbols, dict) or not all(_identifier(s) for s in symbols):
        fail('"symbols" must map identifiers to sizes')

    def size(d, what):
        if isinstance(d, bool) or not isinstance(d, (int, str)):
            fail(f"{what} has size {d!r}")
        if isinstance(d, int):
            if d < 0:
                fail(f"{what} has negative size {d}")
        else:
            _parse(d, set(symbols), lambda msg: fail(f"{what}: {msg}"))

    buffers = {}
    for b in _list(plan, "buffers", fail):
        if not isinstance(b, dict) or not _identifier(b.get("name")):
            fail(f"buffer {b!r} has no identifier name")
        if b["name"] in buffers:
            fail(f"buffer {b['name']} is defined twice")
        if b.get("kind") not in BUFFER_KINDS:
            fail(f"buffer {b['name']} has kind {b.get('kind')!r}")
        if b.get("dtype") not in DTYPES:
            fail(f"buffer {b['name']} has dtype {b.get('dtype')!r}")
        if not isinstance(b.get("shape"), list):
            fail(f"buffer {b['name']} has no shape list")
        for d in b["shape"]:
            size(d, f"buffer {b['name']}")
        buffers[b["name"]] = b
    for group in ("inputs", "outputs"):
        for t in _list(plan, group, fail):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or t.get("buffer") not in buffers:
                fail(f"{group} entry {t!r} names no buffer of the plan")
    for i, launch in enumerate(_list(plan, "launches", fail)):
        for cfg in [launch] + list(launch.get("candidates") or []):
            if not isinstance(cfg, dict) or not _identifier(cfg.get("kernel")):
                fail(
                    f"launch {i} has kernel name {cfg.get('kernel') if isinstance(cfg, dict) else cfg!r}, "
                    "which is not an identifier"
                )
            if f"kernels/{cfg['kernel']}.py" not in files:
                fail(f'launch {i}\'s kernel {cfg["kernel"]} has no digest in "files"')
            if not isinstance(cfg.get("grid"), list) or not 1 <= len(cfg["grid"]) <= 3:
                fail(f"launch {i} has grid {cfg.get('grid')!r}")
            for g in cfg["grid"]:
                size(g, f"launch {i}'s grid")
            for key in ("num_warps", "num_stages"):
                if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int) or not 0 < cfg[key] <= 64:
                    fail(f"launch {i} has {key} {cfg.get(key)!r}")
            constexprs = cfg.get("constexprs", {})
            if not isinstance(constexprs, dict) or not all(
                isinstance(k, str) and _BLOCK.fullmatch(k) and type(v) is int and 0 < v <= MAX_BLOCK
                for k, v in constexprs.items()
            ):
                fail(f"launch {i} has block sizes {constexprs!r} (constexpr parameters BLOCK_*: 1 to {MAX_BLOCK})")
        if not isinstance(launch.get("buffers"), list) or not all(b in buffers for b in launch["buffers"]):
            fail(f"launch {i} ({launch['kernel']}) reads or writes a buffer the plan does not define")
        if not all(s in symbols for s in launch.get("symbols") or []):
            fail(f"launch {i} ({launch['kernel']}) takes a size that is not a symbol of the plan")
        for target, name in (launch.get("cubins") or {}).items():
            if name != f"{launch['kernel']}.{target}.cubin" or f"kernels/{name}" not in files:
                fail(f"launch {i} ({launch['kernel']}) names cubin {name!r}, which the plan does not list")
    memory = plan.get("memory")
    if not isinstance(memory, dict) or not isinstance(memory.get("offsets"), dict):
        fail("no memory plan")
    arena = memory.get("arena_bytes")
    if isinstance(arena, bool) or not isinstance(arena, int) or arena < 0:
        fail(f"memory plan has arena_bytes {arena!r}")
    for name, off in memory["offsets"].items():
        if name not in buffers or buffers[name]["kind"] != "intermediate":
            fail(f"memory plan places {name!r}, which is not an intermediate buffer")
        if isinstance(off, bool) or not isinstance(off, int) or off < 0:
            fail(f"memory plan places {name} at offset {off!r}")
    for check in plan.get("checks") or []:
        if not isinstance(check, dict) or buffers.get(check.get("buffer"), {}).get("kind") != "check":
            fail(f"index check {check!r} names no check buffer of the plan")
        if buffers[check["buffer"]]["shape"] != [2] or buffers[check["buffer"]]["dtype"] != "int64":
            fail(f"index check buffer {check['buffer']} is not int64[2]")
        if not isinstance(check.get("node"), str) or not isinstance(check.get("op_type"), str):
            fail(f"index check {check['buffer']} names no node")
        size(check.get("size"), f"index check {check['buffer']}")
        for s in check.get("sizes") or []:  # GatherND, ScatterND: per axis of the index tuple
            size(s, f"index check {check['buffer']}")
    for guard in plan.get("guards") or []:
        if not (isinstance(guard, list) and len(guard) == 2 and all(isinstance(g, str) for g in guard)):
            fail(f"guard {guard!r} is not [condition, reason]")
        _parse(guard[0], set(symbols), lambda msg, text=guard[0]: fail(f"guard {text!r}: {msg}"))


def _validate_program(plan: dict, files: dict, fail: Callable[[str], NoReturn]) -> None:
    """A program's plan (`tritonnx.compiler.program`): its steps' kinds, sub-artifact
    directories (each plan.json listed with its digest) and value names."""

    def names(value, what):
        if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
            fail(f"{what} is not a list of value names")

    for group in ("inputs", "outputs"):
        for t in _list(plan, group, fail):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str) or t.get("dtype") not in DTYPES:
                fail(f"{group} entry {t!r} has no name or dtype")
    names(plan.get("host_reads", []), "host_reads")
    constants = plan.get("constants", {})
    if not isinstance(constants, dict):
        fail('"constants" is not a map')
    for name, c in constants.items():
        if not (isinstance(c, dict) and c.get("dtype") in DTYPES and isinstance(c.get("values"), list)):
            fail(f"constant {name!r} has no dtype and values")
        if not (isinstance(c.get("shape"), list) and all(type(d) is int and d >= 0 for d in c["shape"])):
            fail(f"constant {name!r} has shape {c.get('shape')!r}")
        n = 1
        for d in c["shape"]:
            n *= d
        if n != len(c["values"]) or not all(isinstance(v, (int, float, bool)) for v in c["values"]):
            fail(f"constant {name!r} does not hold {n} numbers")
    for i, step in enumerate(_list(plan, "steps", fail)):
        if not isinstance(step, dict) or step.get("step") not in STEP_KINDS:
            fail(f"step {i} has kind {step.get('step') if isinstance(step, dict) else step!r}")
        if step["step"] == "bind":
            if not (
                isinstance(step.get("count"), str)
                and type(step.get("axis")) is int
                and type(step.get("bound")) is int
                and step["bound"] >= 0
                and len(step.get("inputs", [])) == len(step.get("outputs", []))
            ):
                fail(f"step {i} binds no count, axis and bound")
            names(step.get("inputs", []), f"step {i}'s inputs")
            names(step.get("outputs", []), f"step {i}'s outputs")
            continue
        if step["step"] == "host":
            if step.get("op") not in HOST_OPS or not isinstance(step.get("attributes", {}), dict):
                fail(f"step {i} runs host op {step.get('op')!r}")
            names(step.get("inputs", []), f"step {i}'s inputs")
            names(step.get("outputs", []), f"step {i}'s outputs")
            continue
        parts = [step] if step["step"] == "graph" else [step.get(a) for a in STEP_KINDS[step["step"]]]
        for part in parts:
            if (
                not isinstance(part, dict)
                or not isinstance(part.get("dir"), str)
                or not _STEP_DIR.fullmatch(part["dir"])
            ):
                fail(f"step {i} names no sub-artifact directory")
            if f"{part['dir']}/plan.json" not in files:
                fail(f'step {i}\'s sub-artifact {part["dir"]} has no digest in "files"')
            for key in ("inputs", "outputs", "captures"):
                names(part.get(key, []), f"step {i}'s {key}")
        names(step.get("inputs", []), f"step {i}'s inputs")
        names(step.get("outputs", []), f"step {i}'s outputs")


def _list(plan: dict, key: str, fail: Callable[[str], NoReturn]) -> list:
    value = plan.get(key)
    if not isinstance(value, list):
        fail(f'no "{key}" list')
    return value


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _parse(text: str, names: set | None, fail) -> ast.AST:
    """The syntax tree of a size expression or condition; `fail(message)` for anything but
    integer literals, names (those in `names`, any when None), + - * // %, unary minus,
    min(...), max(...) and comparisons."""
    tree, message = _checked(text, None if names is None else frozenset(names))
    if tree is None:
        fail(message)
    assert tree is not None  # fail raises
    return tree


@functools.lru_cache(maxsize=4096)
def _checked(text: str, names: frozenset | None) -> tuple[ast.AST | None, str | None]:
    """(the tree, None) of `_parse`, or (None, what is wrong); memoized (a plan repeats
    its expressions)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None, f"{text!r} is not an expression"
    calls = {
        id(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("min", "max")
        and node.args
        and not node.keywords
    }
    for node in ast.walk(tree):
        ok = (
            isinstance(node, (ast.Expression, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load, ast.Compare))
            or (isinstance(node, ast.Call) and id(node.func) in calls)
            or id(node) in calls
            or type(node) in _BINARY
            or type(node) in _COMPARE
            or (isinstance(node, ast.BinOp) and type(node.op) in _BINARY)
            or (isinstance(node, ast.Constant) and type(node.value) is int)
            or (isinstance(node, ast.Name) and (names is None or node.id in names))
        )
        if not ok:
            what = ast.dump(node) if not isinstance(node, ast.Name) else repr(node.id)
            return None, f"{text!r} holds {what}, which is not integer size arithmetic over the plan's symbols"
    return tree, None


def evaluate(text: int | str, values: dict[str, int]) -> int:
    """A size expression or condition of the plan at the given symbol values ({name: int}).
    Raises NameError for a symbol without a value, ArtifactError for anything that is not
    integer size arithmetic."""
    if isinstance(text, int):
        return text

    def fail(msg):
        raise ArtifactError(msg)

    def go(node):
        if isinstance(node, ast.Expression):
            return go(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise NameError(node.id)
            return int(values[node.id])
        if isinstance(node, ast.UnaryOp):
            v = go(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](go(node.left), go(node.right))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("min", "max")
            and node.args
            and not node.keywords
        ):
            return (min if node.func.id == "min" else max)(go(a) for a in node.args)
        if isinstance(node, ast.Compare):
            left = go(node.left)
            for op, right in zip(node.ops, node.comparators):
                r = go(right)
                if not _COMPARE[type(op)](left, r):
                    return 0
                left = r
            return 1
        fail(f"{text!r} is not a size expression")

    return int(go(_parse(text, None, fail)))


def read_verified(root: Path, plan: dict, rel: str) -> bytes:
    """The bytes of artifact file `rel` (e.g. "kernels/NAME.py"), after checking them against
    the plan's SHA-256. The bytes returned are the ones checked: use them, do not read the
    file again. Raises ArtifactError when the file is missing, unlisted or altered."""
    digest = plan["files"].get(rel)
    if digest is None:
        raise ArtifactError(f"{root}: the plan lists no digest for {rel}; the artifact is damaged.")
    try:
        data = (Path(root) / rel).read_bytes()
    except OSError as e:
        raise ArtifactError(
            f"{root}: cannot read {rel} ({e.strerror}); the artifact is incomplete. Compile the model again."
        ) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise ArtifactError(
            f"{root}: {rel} does not match the SHA-256 recorded in plan.json (the file was "
            "changed after compiling); refusing to load it. Compile the model again."
        )
    return data


def verify_file(root: Path, plan: dict, rel: str) -> None:
    """Checks artifact file `rel` against the plan's SHA-256, reading it in chunks and keeping
    none of its bytes (for files a library then opens by path: cubins, the weights, which
    safetensors maps). Raises ArtifactError as `read_verified`."""
    digest = plan["files"].get(rel)
    if digest is None:
        raise ArtifactError(f"{root}: the plan lists no digest for {rel}; the artifact is damaged.")
    try:
        actual = sha256_file(Path(root) / rel)
    except OSError as e:
        raise ArtifactError(
            f"{root}: cannot read {rel} ({e.strerror}); the artifact is incomplete. Compile the model again."
        ) from None
    if actual != digest:
        raise ArtifactError(
            f"{root}: {rel} does not match the SHA-256 recorded in plan.json (the file was "
            "changed after compiling); refusing to load it. Compile the model again."
        )
