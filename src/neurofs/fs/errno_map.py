"""Domain errors → errno, in one place."""

from __future__ import annotations

import errno

from neurofs import errors

ERRNO: dict[type[errors.NeurofsError], int] = {
    errors.NotFound: errno.ENOENT,
    errors.AccessDenied: errno.EACCES,
    errors.ReadOnly: errno.EROFS,
    errors.NotPermitted: errno.EPERM,
    errors.InvalidContent: errno.EINVAL,
    errors.Conflict: errno.EBUSY,
    errors.AlreadyExists: errno.EEXIST,
    errors.TooLarge: errno.EFBIG,
    errors.NotADirectory: errno.ENOTDIR,
    errors.NotEmpty: errno.ENOTEMPTY,
    errors.IsADirectory: errno.EISDIR,
    errors.RemoteError: errno.EIO,
    errors.ConfigError: errno.EINVAL,
}


def errno_for(exc: errors.NeurofsError) -> int:
    for cls in type(exc).__mro__:
        if cls in ERRNO:
            return ERRNO[cls]
    return errno.EIO
