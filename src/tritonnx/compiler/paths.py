"""Output paths: tritonnx replaces only what it wrote, and cleans up only its own leftovers.

A compile writes its artifact into a work directory beside the output,
`.NAME.partial-PID-XXXX`, and renames it into place (`replace`). The output path may hold
nothing, an empty directory or a previous tritonnx artifact (recognized by the format
marker of its plan.json, `tritonnx.runtime.format.is_artifact`); anything else (a file, a
link, a directory of the user's) is refused with `OutputPathError` and left untouched.
The check and the renames happen under an exclusive `flock` on the parent directory, so
two compiles into one output both end with a whole artifact (the later one's). The previous
artifact is renamed to `.NAME.old-PID-XXXX` and removed after. Work and old directories of
processes that no longer run (a killed compile) are reclaimed by the next compile beside
them (`reclaim`); only directories named by this scheme, whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

from tritonnx.errors import OutputPathError
from tritonnx.runtime.format import is_artifact

TEMP_PREFIX = "tritonnx-"  # compile() without an output directory: tempdir/tritonnx-PID-XXXX


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs (or may: one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_tree(path: Path) -> None:
    """Removes a directory tritonnx wrote, read-only parts included (cache entries are
    read-only; links inside are removed, never followed). Errors are ignored: another
    process may be removing it too."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            path.unlink()
        return
    for root, dirs, _ in os.walk(path):
        for d in [root] + [os.path.join(root, x) for x in dirs]:
            if not os.path.islink(d):
                with contextlib.suppress(OSError):
                    os.chmod(d, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def _owned(name: str, stem: str) -> re.Match | None:
    return re.fullmatch(rf"\.{re.escape(stem)}\.(partial|old)-(\d+)-[0-9a-z_]+", name)


def reclaim(final: Path) -> list[Path]:
    """Removes the work and old directories of dead compiles beside `final` (named
    `.NAME.partial-PID-*` / `.NAME.old-PID-*` with PID no longer running). Returns them."""
    removed: list[Path] = []
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return removed
    for p in siblings:
        m = _owned(p.name, final.name)
        if m and p.is_dir() and not p.is_symlink() and not pid_alive(int(m.group(2))):
            remove_tree(p)
            removed.append(p)
    return removed


def reclaim_temporaries() -> None:
    """Removes artifacts that `compile()` without an output directory left in the system's
    temporary directory (`tritonnx-PID-*`) for processes that no longer run."""
    root = Path(tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for p in entries:
        m = re.fullmatch(rf"{TEMP_PREFIX}(\d+)-[0-9a-z_]+", p.name)
        if (
            m
            and p.is_dir()
            and not p.is_symlink()
            and not pid_alive(int(m.group(1)))
            and (is_artifact(p) or not any(p.iterdir()))
        ):
            remove_tree(p)


def temporary_output() -> Path:
    """A new empty directory for an artifact nobody asked to keep: tempdir/tritonnx-PID-XXXX."""
    reclaim_temporaries()
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))


def check_output(final: Path) -> None:
    """Raises OutputPathError unless `final` is absent, an empty directory or a tritonnx
    artifact: the only things a compile may replace."""
    if final.is_symlink():
        raise OutputPathError(
            f"output path {final} is a symbolic link; tritonnx writes its artifact only to a "
            "real directory path. Give the link's target or another path."
        )
    if not final.exists():
        return
    if not final.is_dir():
        raise OutputPathError(
            f"output path {final} is an existing file; tritonnx replaces only a directory "
            "holding a previous tritonnx artifact. Choose another path; the file is untouched."
        )
    if is_artifact(final):
        return
    try:
        empty = not any(final.iterdir())
    except OSError as e:
        raise OutputPathError(f"output path {final} cannot be read ({e.strerror}).") from None
    if not empty:
        raise OutputPathError(
            f"output path {final} is a non-empty directory that is not a tritonnx artifact (no "
            "plan.json with tritonnx's format marker); tritonnx replaces only its own artifacts. "
            "Choose a new or empty directory; nothing in it was touched."
        )


_DUMP_FILE = re.compile(r"\d\d-[\w.,-]+\.mlir|[A-Za-z_]\w*\.py", re.ASCII)


def check_dump_dir(path: Path) -> None:
    """Raises OutputPathError unless `path` (`--dump-ir`) is absent, an empty directory or
    holds only files named as a dump's are (`NN-pass.mlir`, kernel sources): a dump
    overwrites the files of a previous dump, never anything else."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputPathError(f"--dump-ir {path} is an existing file or link; give a directory for the dumps.")
    if not path.is_dir():
        return
    foreign = [p.name for p in path.iterdir() if not (p.is_file() and _DUMP_FILE.fullmatch(p.name))]
    if foreign:
        raise OutputPathError(
            f"--dump-ir {path} holds files that are not pass dumps ({', '.join(sorted(foreign)[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); tritonnx writes dumps only into a new or empty "
            "directory or over a previous dump. Choose another directory."
        )


def work_dir(final: Path) -> Path:
    """A new work directory beside `final`, named for this process (see `reclaim`)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-{os.getpid()}-", dir=final.parent))


@contextlib.contextmanager
def _locked(directory: Path):
    """An exclusive flock on `directory` (held by one process at a time; released when the
    process dies, so a killed compile never leaves it held)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def replace(work: Path, final: Path) -> None:
    """Moves the finished artifact `work` to `final`, replacing what was there if that is a
    previous artifact or an empty directory. Raises OutputPathError (and leaves `final` as
    it is) otherwise; the caller removes `work`."""
    old = None
    with _locked(final.parent):
        check_output(final)
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            final.rename(old)
        work.rename(final)
    if old is not None:
        remove_tree(old)
