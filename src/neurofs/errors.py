"""Domain errors raised by tree nodes and sources.

Only the ``fs`` layer knows errnos: it maps these classes to errno values in one place
(``neurofs.fs.errno_map``). Everything below it raises one of these, with a message meant
for ``.neurofs/errors.log`` and the daemon log (never containing a secret).
"""

from __future__ import annotations


class NeurofsError(Exception):
    """Base class of every error neurofs raises on purpose."""


class NotFound(NeurofsError):
    """The path does not exist on the server (ENOENT)."""


class AccessDenied(NeurofsError):
    """The server refused: not logged in, not allowed, embargoed (EACCES)."""


class ReadOnly(NeurofsError):
    """The target can never be written through this mount (EROFS)."""


class NotPermitted(NeurofsError):
    """The operation needs an explicit mount option (EPERM)."""


class InvalidContent(NeurofsError):
    """Text written by the user does not parse or validate (EINVAL)."""


class PartlyRefused(InvalidContent):
    """A batch the server accepted only in part (EINVAL): ``receipt`` says what was made,
    ``refused`` holds the items it refused, each with the server's message."""

    def __init__(self, message: str, *, receipt: bytes, refused: bytes) -> None:
        super().__init__(message)
        self.receipt = receipt
        self.refused = refused


class Conflict(NeurofsError):
    """The server reports a conflicting state (EBUSY)."""


class AlreadyExists(NeurofsError):
    """The target name is taken (EEXIST)."""


class TooLarge(NeurofsError):
    """A write exceeds the size a sidecar may have (EFBIG)."""


class NotEmpty(NeurofsError):
    """A directory that still has entries (ENOTEMPTY)."""


class NotADirectory(NeurofsError):
    """A path component is a file (ENOTDIR)."""


class IsADirectory(NeurofsError):
    """A file operation on a directory (EISDIR)."""


class RemoteError(NeurofsError):
    """The server or network failed after retries, or sent bytes that fail checks (EIO)."""


class ConfigError(NeurofsError):
    """The configuration is invalid or unsafe; raised before mounting."""


def first_domain_error(group: BaseExceptionGroup) -> NeurofsError | None:
    """The first NeurofsError in a nursery's ExceptionGroup (depth first), or None.

    Tasks started in parallel for one request (the chunks of one read, the pages of one
    listing) fail for one reason as far as the caller is concerned, and the fs layer maps a
    single error to an errno; without this, a 404 behind a parallel read would surface as an
    unexpected ExceptionGroup (EIO with a traceback) instead of its own errno."""
    for exc in group.exceptions:
        if isinstance(exc, NeurofsError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = first_domain_error(exc)
            if found is not None:
                return found
    return None
