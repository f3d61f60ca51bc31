"""Saving files so that a failure names the file: :func:`write_atomically`.

A full disk surfaces as whatever the writer makes of it: ``OSError: [Errno
28] No space left on device`` without a path from joblib, and from
``torch.save`` a ``RuntimeError`` such as ``[enforce fail at
inline_container.cc:672] . unexpected pos 704 vs 598``.  Both become one
:class:`OSError` naming the file being saved and the space left.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = ["write_atomically", "write_error"]

#: errno values of a full disk or an exhausted quota
_FULL = (errno.ENOSPC, errno.EDQUOT)
#: how torch.save's C++ stream writer reports a failed write
_TORCH_WRITE_FAILURE = ("inline_container", "PytorchStreamWriter", "file write failed")


def _free_space(path):
    """Bytes free on the file system of ``path`` (or of its folder), as text."""
    for place in (Path(path), Path(path).parent):
        try:
            free = shutil.disk_usage(place).free
        except OSError:
            continue
        for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
            if free < 1024 or unit == "TiB":
                return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
            free /= 1024
    return "unknown space"


def write_error(path, exc):
    """The :class:`OSError` to raise for ``exc``, a failure to write ``path``,
    or None when ``exc`` is no failure of the disk (e.g. KeyboardInterrupt).

    Parameters
    ----------
    path : str or path-like
        The file being saved (named in the message).
    exc : BaseException

    Returns
    -------
    error : OSError or None

    Examples
    --------
    >>> import errno
    >>> from skasc._files import write_error
    >>> err = write_error("out/model.joblib", OSError(errno.ENOSPC, "No space left on device"))
    >>> err.errno == errno.ENOSPC, "out/model.joblib" in str(err)
    (True, True)
    >>> write_error("out/model.joblib", KeyboardInterrupt()) is None
    True
    """
    path = os.fspath(path)
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return OSError(exc.errno, f"cannot save {path!r}: no space left on its disk"
                                  f" ({_free_space(path)} free); free some space or save elsewhere")
    if isinstance(exc, RuntimeError) and any(s in str(exc) for s in _TORCH_WRITE_FAILURE):
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return OSError(errno.EIO, f"cannot save {path!r}: writing it failed, most likely a full disk"
                                  f" ({_free_space(path)} free there; torch said: {reason})")
    return None


def write_atomically(path, write):
    """Save a file through ``write(tmp)`` and move it into place at once.

    ``write`` writes a temporary file beside ``path``; it is flushed to disk
    and renamed to ``path`` (:func:`os.replace`), so ``path`` holds either
    its previous content or the whole new one, never half a file.  On any
    failure the temporary file is removed; a full disk raises an
    :class:`OSError` naming ``path`` (see :func:`write_error`).

    Parameters
    ----------
    path : str or path-like
    write : callable
        Called with the temporary path (a :class:`pathlib.Path`).

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skasc._files import write_atomically
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> write_atomically(target, lambda tmp: tmp.write_text("done")).read_text()
    'done'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "r+b") as f:
            os.fsync(f.fileno())  # on disk before it replaces the previous file
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        error = write_error(path, exc)
        if error is None:
            raise
        raise error from exc
    return path
