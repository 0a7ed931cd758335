"""The compile cache: finished artifacts by a key of everything that decides them.

Key: SHA-256 of the model as compiled (after `constants` are applied; the bytes of its
external data, read in chunks, wherever the model's directory is), the compile options,
the tritonnx sources (every .py and .mlir file of the package, so an edit invalidates the
cache) and the versions of Triton, onnx and the MLIR bindings.

Location: `$TRITONNX_CACHE_DIR`, else the platform's cache directory (`platformdirs`:
`$XDG_CACHE_HOME/tritonnx`, by default `~/.cache/tritonnx` on Linux). Each entry,
`<key>/`, is a private, read-only copy of an artifact plus `manifest.json`, the SHA-256 of
every file in it (plan.json included). A hit verifies every digest and copies the files
out (never a link the user could write through); an entry that fails, truncated or
missing a file, is evicted with a one-line note and the model compiled again. Entries are
written in `.tmp-PID-XXXX` and renamed in, so a reader never sees half of one; those of
dead processes are reclaimed. The `MAX_ENTRIES` most recently used are kept. Only
directories named like a key or a temporary of ours are ever removed, whatever else the
directory holds. Kernels compiled to cubin are also cached by Triton itself
(`TRITON_CACHE_DIR`), keyed by their source.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from importlib import metadata
from pathlib import Path

import onnx

from tritonnx.compiler.options import CompileOptions
from tritonnx.compiler.paths import pid_alive, remove_tree
from tritonnx.importers import external
from tritonnx.runtime.format import sha256_file

MAX_ENTRIES = 16
MANIFEST = "manifest.json"
_KEY = re.compile(r"[0-9a-f]{32}")
_TMP = re.compile(r"\.tmp-(\d+)-[0-9a-z_]+")
_LEGACY_TMP = re.compile(r"\.[0-9a-f]{32}-[0-9a-z_]+")  # temporaries of tritonnx before the manifest
log = logging.getLogger("tritonnx")


def cache_dir() -> Path:
    """Where entries live: `$TRITONNX_CACHE_DIR`, else the platform's user cache directory."""
    env = os.environ.get("TRITONNX_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("tritonnx", appauthor=False))


@functools.cache
def _fingerprint() -> str:
    """Hash of tritonnx's own sources and the versions of the libraries that shape output."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".mlir")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for dist in ("triton", "onnx", "xtc-mlir-python-bindings"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return h.hexdigest()


def key(proto: onnx.ModelProto, options: CompileOptions) -> str:
    """The cache key of compiling `proto` (from `importers.onnx.load`) with `options`:
    tritonnx's own fingerprint, `options.key()`, the serialized model and the bytes of its
    external data (`importers.external.digest`)."""
    h = hashlib.sha256(_fingerprint().encode())
    h.update(options.key().encode())
    if external.has_external(proto):
        h.update(external.without_basepath(proto).SerializeToString(deterministic=True))
        external.digest(proto, h)
    else:
        h.update(proto.SerializeToString(deterministic=True))
    return h.hexdigest()[:32]


def _entries(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if _KEY.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _verify(entry: Path) -> dict[str, str]:
    """The entry's {relative path: SHA-256}, after checking every file against it. Raises
    ValueError saying what is wrong."""
    try:
        files = json.loads((entry / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"its manifest is unreadable ({type(e).__name__})") from None
    if not isinstance(files, dict) or "plan.json" not in files:
        raise ValueError("its manifest lists no plan.json")
    for rel, digest in files.items():
        path = entry / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"its manifest names {rel!r}")
        if not path.is_file():
            raise ValueError(f"{rel} is missing")
        if sha256_file(path) != digest:
            raise ValueError(f"{rel} does not match its SHA-256")
    return files


def lookup(k: str) -> tuple[Path, dict[str, str]] | None:
    """(the entry for key `k`, its verified manifest), or None. An entry that fails
    verification is evicted, with a one-line note on the `tritonnx` logger."""
    entry = cache_dir() / k
    if not entry.is_dir():
        return None
    try:
        files = _verify(entry)
    except ValueError as e:
        log.warning("tritonnx: compile cache entry %s is damaged (%s); evicted it, compiling again.", entry, e)
        remove_tree(entry)
        return None
    try:
        os.utime(entry)
    except OSError:
        pass
    return entry, files


def copy_out(entry: Path, files: dict[str, str], dst: Path) -> None:
    """Copies a verified entry's files into directory `dst` as ordinary writable files.
    Raises OSError when the entry vanished meanwhile (evicted by another process)."""
    for rel in files:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry / rel, target)


def _reclaim(root: Path) -> None:
    """Removes temporaries of processes that no longer run (and old-style ones over an hour old)."""
    try:
        names = list(root.iterdir())
    except OSError:
        return
    for p in names:
        m = _TMP.fullmatch(p.name)
        dead = m is not None and not pid_alive(int(m.group(1)))
        if not dead and _LEGACY_TMP.fullmatch(p.name):
            try:
                dead = time.time() - p.stat().st_mtime > 3600
            except OSError:
                continue
        if dead and p.is_dir() and not p.is_symlink():
            remove_tree(p)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:  # removed meanwhile
        return 0.0


def store(k: str, artifact: Path) -> None:
    """Stores a private read-only copy of a finished artifact with its manifest. Best
    effort: a full or read-only disk gives a one-line note, never an error, and leaves no
    temporary behind."""
    root = cache_dir()
    tmp = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _reclaim(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=root))
        files = {}
        for src in sorted(artifact.rglob("*")):
            if src.is_file():
                rel = src.relative_to(artifact).as_posix()
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, tmp / rel)
                files[rel] = sha256_file(tmp / rel)
        (tmp / MANIFEST).write_text(json.dumps({"key": k, "files": files}, indent=1))
        for p in sorted(tmp.rglob("*"), reverse=True) + [tmp]:  # read-only: files first, then directories
            os.chmod(p, stat.S_IRUSR | stat.S_IRGRP | (stat.S_IXUSR | stat.S_IXGRP if p.is_dir() else 0))
        try:
            tmp.rename(root / k)
            tmp = None
        except OSError:  # another process stored it first
            pass
        entries = sorted(_entries(root), key=_mtime, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            remove_tree(old)
    except OSError as e:
        log.warning("tritonnx: could not store the artifact in the compile cache %s (%s).", root, e.strerror or e)
    finally:
        if tmp is not None:
            remove_tree(tmp)


def info() -> dict:
    """{"path", "entries", "bytes", "max_entries"} of the compile cache."""
    root = cache_dir()
    entries = _entries(root)
    size = sum(f.stat().st_size for e in entries for f in e.rglob("*") if f.is_file())
    return {"path": str(root), "entries": len(entries), "bytes": size, "max_entries": MAX_ENTRIES}


def clear() -> int:
    """Removes every entry and dead temporary (nothing else in the directory). Returns the
    number of entries removed."""
    root = cache_dir()
    entries = _entries(root)
    for e in entries:
        remove_tree(e)
    _reclaim(root)
    return len(entries)
