"""One exception hierarchy for every radiocloud app.

The CLI boundary (:func:`radiocloud.core.cli.run_app`) turns a :class:`RadiocloudError` into one
line on stderr and a non-zero exit: :data:`EXIT_BAD_INPUT` (2) for :class:`BadInputError` and its
children, 1 otherwise. Leaf errors also inherit the matching builtin, so callers that catch
``FileNotFoundError`` or ``ValueError`` keep working.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class RadiocloudError(Exception):
    """Base of every error radiocloud raises on purpose."""

    exit_code = EXIT_FAILURE


class BadInputError(RadiocloudError):
    """The user's input (paths, options, data) cannot be used as given."""

    exit_code = EXIT_BAD_INPUT


class DatasetNotFoundError(BadInputError, FileNotFoundError):
    """A dataset path or URL does not exist."""


class NotADatasetError(BadInputError, ValueError):
    """A path exists but is not a Measurement Set, zarr store or parquet dataset."""


class ColumnError(BadInputError, KeyError):
    """A column is missing, or has the wrong dtype or shape."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OptionError(BadInputError, ValueError):
    """A command-line option or recipe parameter has an invalid value."""


class OutputExistsError(BadInputError, FileExistsError):
    """An output path exists and ``--overwrite`` was not given."""


class OutputNotWritableError(BadInputError, PermissionError):
    """An output location cannot be written."""


class DatasetAccessError(BadInputError, PermissionError):
    """A dataset exists but cannot be read with the credentials given (object stores)."""


class DeltaError(BadInputError):
    """A versioned dataset (delta-set) cannot be used as asked."""


class DeltaParentMissingError(DeltaError, FileNotFoundError):
    """The parent a delta-set was branched from is gone (moved, deleted, unreachable)."""


class DeltaParentChangedError(DeltaError, ValueError):
    """The parent of a delta-set no longer matches the fingerprint recorded at branch time."""


class DeltaCycleError(DeltaError, ValueError):
    """A delta-set's chain of parents leads back to itself."""


class UnsupportedLayoutError(BadInputError, ValueError):
    """The data cannot be stored in the format asked for (e.g. ragged shapes in parquet)."""


class SkyModelError(BadInputError, ValueError):
    """A sky model file cannot be parsed."""


class FlagVersionError(BadInputError):
    """A flag version cannot be saved, restored or deleted as asked."""


class FlagVersionNameError(FlagVersionError, ValueError):
    """A flag version name has characters that are not allowed."""


class FlagVersionNotFoundError(FlagVersionError, LookupError):
    """No complete flag version of that name exists for the dataset."""


class FlagVersionExistsError(FlagVersionError, FileExistsError):
    """A flag version of that name exists and ``overwrite`` was not given."""


class FlagVersionMismatchError(FlagVersionError, ValueError):
    """A flag version was saved from a dataset of other partitions, rows or shapes."""


class OverflaggedError(RadiocloudError):
    """More of the data is flagged than the run allows (``--max-flagged``)."""
