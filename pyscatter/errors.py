"""The exceptions pyscatter raises: one base, specific errors subclassing the matching builtin."""


class PyscatterError(Exception):
    """Base class of every error pyscatter raises on purpose."""


class InputError(PyscatterError, ValueError):
    """A file, parameter or array that pyscatter cannot use as given."""


class FileFormatError(InputError):
    """A file that is missing, truncated, corrupt or of an unexpected layout."""


class FileBusyError(PyscatterError, RuntimeError):
    """Another job holds the file (one writer per file)."""


class ExistingResultsError(PyscatterError, FileExistsError):
    """An output exists and overwriting was not asked for."""
