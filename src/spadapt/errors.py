"""`SpadaptError`: the base of every error spadapt raises for bad input or a bad request.

Each module defines its own subclass where the fact is known (ConfigError, AdapterError,
ArchitectureError, CodecError, AssetError, DataError, ...); `AdapterFileError` lives here
because both the file format and the fingerprint check raise it. All are
`ValueError`s, so callers can catch either; the CLI maps them to exit code 2.
"""


class SpadaptError(ValueError):
    """Bad input or an impossible request; the message says what, where and what to do."""


class AdapterFileError(SpadaptError):
    """An adapter directory is missing, corrupted, hand-edited or for another base model."""
