"""`DataError`: a dataset cannot be read or used (missing file, column or package, bad rows).

It is a `SpadaptError`, hence a `ValueError`; the CLI maps it to exit code 2.
"""

from ..errors import SpadaptError


class DataError(SpadaptError):
    """A dataset cannot be read: missing package, file or column, bad rows, an impossible split."""
