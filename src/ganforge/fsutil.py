"""Small filesystem helpers for durable, atomic writes (temp file, fsync, rename), and the one rule for
output paths (`check_output_path`). Imports nothing from ganforge but its errors."""

from __future__ import annotations

import os
import shutil
import tempfile

from ganforge.errors import UsageError


def _nearest_existing(path: str) -> str:
    probe = path
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    return probe


def check_output_path(path: str, flag: str = "--out", overwrite: bool = False, kind: str = "file") -> str:
    """The rule every command applies to an output it writes (a file for --out, a file or a folder for
    `dataset --dest`), checked before any work starts. Returns the path; creates nothing.

      * missing parent folders are fine: they are created when the output is written (as --outdir is);
        the nearest existing ancestor must be a writable folder;
      * an existing output is never replaced unless `overwrite` (the commands' --overwrite); with it the
        old one is replaced only once the new one is complete (atomic rename), so a failure keeps it;
      * an empty existing folder counts as absent for kind "dir"; a folder where a file is wanted (or a
        file where a folder is wanted) is refused.
    """
    full = os.path.abspath(os.fspath(path))
    if os.path.lexists(full):
        is_dir = os.path.isdir(full)
        if kind == "file" and is_dir:
            raise UsageError(f"{flag} {path} is a folder; give a file name")
        if kind == "dir" and not is_dir:
            raise UsageError(f"{flag} {path} exists and is not a folder; give a new folder (or a .zip name)")
        empty_dir = is_dir and not os.listdir(full)
        if not empty_dir and not overwrite:
            what = "folder is not empty" if is_dir else "exists"
            raise UsageError(f"{flag} {path}: {what}; pass --overwrite to replace it, or choose another {flag}")
        parent = os.path.dirname(full)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path}: its folder {parent} is not writable; choose another {flag}")
        return path
    probe = _nearest_existing(os.path.dirname(full))
    if not os.path.isdir(probe):
        raise UsageError(f"{flag} {path}: {probe} is not a folder; choose another {flag}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {probe} is not writable; choose another {flag}")
    return path


def make_parent_dirs(path: str, flag: str = "--out") -> None:
    """Create the folders above output `path` (after `check_output_path`); one-line error if that fails."""
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {parent} for {flag}: {e.strerror}; choose another {flag}") from None


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename inside it survives a crash (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask (reading it requires setting it; it is restored at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` so that `path` is never seen half-written.

    The bytes go to a temporary file in the same directory (same filesystem), which is fsynced and then
    renamed over `path` in one step; the directory is fsynced so the rename survives a crash. On any
    error (a full disk, an interrupt) the temporary file is removed, `path` keeps its old content (or
    stays absent), and the error propagates (OSError for the filesystem's refusals).
    """
    parent = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=parent)
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; these are ordinary files
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_dir(parent)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_text(path: str, text: str) -> None:
    """`atomic_write_bytes` of `text` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


OLD_DIR_MARK = ".old-"  # replace_dir's aside copy: <final>.old-<pid>


def replace_dir(staged: str, final: str) -> None:
    """Move the fully written directory `staged` to `final`, replacing any existing `final`.

    An existing `final` is renamed aside (to `<final>.old-<pid>`) first and removed only after the new
    one is in place, so at every moment one complete version exists on disk: a process killed between
    the two renames leaves `final` missing and the previous version aside, and `recover_dir(final)`
    renames it back. Both paths must be on the same filesystem.
    """
    if os.path.isdir(final):
        old = final + f"{OLD_DIR_MARK}{os.getpid()}"
        os.rename(final, old)
        os.rename(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staged, final)


def aside_copies(final: str) -> list[str]:
    """The aside copies of `final` that replace_dir left (newest first)."""
    parent, name = os.path.split(os.path.abspath(final))
    try:
        names = [n for n in os.listdir(parent) if n.startswith(name + OLD_DIR_MARK)]
    except OSError:
        return []
    paths = [os.path.join(parent, n) for n in names if os.path.isdir(os.path.join(parent, n))]
    return sorted(paths, key=lambda p: os.stat(p).st_mtime_ns, reverse=True)


def recover_dir(final: str) -> bool:
    """Undo a replace_dir killed between its two renames: if `final` is missing and an aside copy of it
    exists, rename the newest copy back to `final`. Returns whether it did."""
    if os.path.exists(final):
        return False
    for old in aside_copies(final):
        try:
            os.rename(old, final)
        except OSError:
            continue
        fsync_dir(os.path.dirname(os.path.abspath(final)))
        return True
    return False
