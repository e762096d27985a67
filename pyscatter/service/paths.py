"""Paths named in requests: always relative to the data root, and always inside it.

A request names a file by its path relative to the data root (``scans/run1.h5``). Refused with
:class:`PathRefusedError` (403): an absolute path, a ``..`` component, a NUL byte, a backslash, and
any path that leaves the root once resolved (a symlink pointing outside). The check is made on
the resolved path, so a link inside the root to a file inside the root is fine.

Examples
--------
>>> import tempfile
>>> root = DataRoot(tempfile.mkdtemp())
>>> root.resolve("../etc/passwd", must_exist=False)
Traceback (most recent call last):
...
pyscatter.service.paths.PathRefusedError: '../etc/passwd': '..' is not allowed in a path
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from pyscatter.errors import InputError

__all__ = ["DataRoot", "NotFoundError", "PathRefusedError"]


class PathRefusedError(InputError):
    """A path that is not inside the data root (HTTP 403)."""


class NotFoundError(InputError):
    """A path inside the data root with nothing there (HTTP 404)."""


class DataRoot:
    """The folder whose files the service reads and where its jobs read and write.

    Parameters
    ----------
    root : path
        An existing folder; resolved once (symlinks followed) at start-up.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise InputError(f"--data-root {os.fspath(root)!r}: not an existing folder")
        self.root = path.resolve(strict=True)

    def resolve(self, rel: str, *, must_exist: bool = True, kind: str = "any") -> Path:
        """The absolute resolved path of ``rel``, refused unless it is inside the root.

        Parameters
        ----------
        rel : str
            Relative to the root, ``/`` separated.
        must_exist : bool
            Refuse (:class:`NotFoundError`) when nothing is there. When False, the parent folder
            must exist (the path of an output to create) and the name must not be a link.
        kind : {"any", "file", "dir"}
            What must be there when it exists.
        """
        candidate = self.root / self._checked(rel)
        try:
            if must_exist or candidate.exists() or candidate.is_symlink():
                resolved = candidate.resolve(strict=True)
            else:
                resolved = candidate.parent.resolve(strict=True) / candidate.name
        except FileNotFoundError:
            raise NotFoundError(f"{rel!r}: no such file or folder under the data root") from None
        except (OSError, RuntimeError) as err:  # a symlink loop
            raise PathRefusedError(f"{rel!r}: cannot be resolved ({err})") from None
        if not resolved.is_relative_to(self.root):
            raise PathRefusedError(f"{rel!r}: leaves the data root (a link to {resolved}?)")
        if not must_exist and candidate.is_symlink():
            raise PathRefusedError(f"{rel!r}: an output must not be a symbolic link")
        if resolved.exists():
            if kind == "file" and not resolved.is_file():
                raise NotFoundError(f"{rel!r}: not a file")
            if kind == "dir" and not resolved.is_dir():
                raise NotFoundError(f"{rel!r}: not a folder")
        return resolved

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` (inside the root) relative to the root, ``/`` separated."""
        return Path(path).relative_to(self.root).as_posix()

    @staticmethod
    def _checked(rel: str) -> PurePosixPath:
        if not isinstance(rel, str) or not rel or len(rel) > 1024:
            raise PathRefusedError(f"{rel!r}: expected a relative path of 1 to 1024 characters")
        if "\x00" in rel or "\\" in rel:
            raise PathRefusedError(f"{rel!r}: NUL bytes and backslashes are not allowed in a path")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or rel.startswith("~"):
            raise PathRefusedError(
                f"{rel!r}: absolute paths are not allowed (relative to the root)"
            )
        if ".." in pure.parts:
            raise PathRefusedError(f"{rel!r}: '..' is not allowed in a path")
        return pure
