"""The compile cache: finished artifacts by a key of everything that decides them.

Key: SHA-256 of the model as compiled (after `constants` are applied), the compile options,
the tritonnx sources (every .py and .mlir file of the package, so an edit invalidates the
cache) and the versions of Triton, onnx and the MLIR bindings. Entries live under
`$TRITONNX_CACHE_DIR` (default `~/.cache/tritonnx`), each a complete artifact directory,
written beside its place and renamed in, so a reader never sees half of one. The
`MAX_ENTRIES` most recently used are kept. Kernels compiled to cubin are also cached by
Triton itself (`TRITON_CACHE_DIR`), keyed by their source.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import onnx

MAX_ENTRIES = 16


def cache_dir() -> Path:
    return Path(os.environ.get("TRITONNX_CACHE_DIR") or Path.home() / ".cache" / "tritonnx")


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


def key(proto: onnx.ModelProto, options: dict) -> str:
    """The cache key of compiling `proto` with `options` (JSON-serializable)."""
    h = hashlib.sha256(_fingerprint().encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    h.update(proto.SerializeToString(deterministic=True))
    return h.hexdigest()[:32]


def lookup(k: str) -> Path | None:
    """The cached artifact for key `k`, or None."""
    entry = cache_dir() / k
    if (entry / "plan.json").is_file():
        os.utime(entry)
        return entry
    return None


def link_or_copy(src: str, dst: str) -> None:
    """A hard link where the filesystem allows (artifacts are written once and never changed
    in place, so entries and the artifacts served from them can share their files; a
    compile or a hit of a model with hundreds of MB of weights then copies nothing), else a
    copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy_artifact(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=link_or_copy)


def store(k: str, artifact: Path) -> None:
    """Copies a finished artifact into the cache (best effort: a full disk is not an error)."""
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{k}-", dir=root))
        copy_artifact(artifact, tmp)
        try:
            tmp.rename(root / k)
        except OSError:  # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
        entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[MAX_ENTRIES:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
