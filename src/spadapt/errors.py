"""`SpadaptError`: the base of every error spadapt raises for bad input or a bad request.

Each module defines its own subclass where the fact is known (ConfigError, AdapterError,
AdapterFileError, ArchitectureError, CodecError, AssetError, DataError, ...). All are
`ValueError`s, so callers can catch either; the CLI maps them to exit code 2.
"""


class SpadaptError(ValueError):
    """Bad input or an impossible request; the message says what, where and what to do."""
