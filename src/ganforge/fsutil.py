"""Small filesystem helpers for durable, atomic writes (temp file, fsync, rename). Imports nothing from ganforge."""

from __future__ import annotations

import os
import shutil


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


def replace_dir(staged: str, final: str) -> None:
    """Move the fully written directory `staged` to `final`, replacing any existing `final`.

    An existing `final` is renamed aside first and removed only after the new one is in place, so at
    every moment one complete version exists on disk. Both paths must be on the same filesystem.
    """
    if os.path.isdir(final):
        old = final + f".old-{os.getpid()}"
        os.rename(final, old)
        os.rename(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staged, final)
