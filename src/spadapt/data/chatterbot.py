"""``builtin:chatterbot_qa``: short question → answer pairs for causal-LM adaptation.

Read from the 21 English YAML files ``chatterbot_corpus/data/english/*.yml`` of the
package ``chatterbot-corpus`` (ChatterBot's training corpus). Each file holds a list of
conversations, each a list of turns; a pair is a conversation's first turn (the prompt) and
its second (the response). Later turns are not used: in most files they are alternative
answers to the first turn, not a dialogue.

What the 1.3.3 files hold: 2,026 conversations. One (trivia.yml line 35) is a YAML slip —
a string where a list of two turns was meant — and is returned in ``rejected``. Of the
2,025 pairs, 1,128 repeat an earlier pair exactly (tech_support.yml alone is 10 pairs, each
105 times) and are dropped, leaving 897 distinct pairs. Many prompts have several answers
("Tell me a joke"): the split keeps all pairs of one prompt on the same side, so that eval
measures answers to unseen prompts. Scalars are read as text, untyped (an answer ``1984``
stays the string "1984"), and stripped of surrounding whitespace.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import DataError
from .packages import package_path
from .records import DatasetSplit, PromptExample, RejectedRow
from .split import group_split

NAME = "builtin:chatterbot_qa"
_PIP_SPEC = "chatterbot-corpus==1.3.3"
_FOLDER = "data/english"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_chatterbot_qa(seed: int = 0, eval_fraction: float = 0.2) -> DatasetSplit:
    """Distinct pairs split by prompt with ``group_split`` (about ``eval_fraction`` of the
    pairs, whole prompts at a time, chosen with ``numpy.random.default_rng(seed)``)."""
    pairs, rejected = read_chatterbot_qa()
    pairs = list(dict.fromkeys(pairs))  # exact repeats dropped, first occurrence kept
    train_idx, eval_idx = group_split([pair.prompt for pair in pairs], seed, eval_fraction)
    return DatasetSplit(NAME, "causal_lm", [pairs[i] for i in train_idx],
                        [pairs[i] for i in eval_idx], [], rejected)


def read_chatterbot_qa() -> tuple[list[PromptExample], list[RejectedRow]]:
    """Every conversation's (first turn, second turn) in file order, repeats included, and
    the conversations that are not a list of at least two text turns."""
    folder = package_path(NAME, "chatterbot_corpus", _FOLDER, _PIP_SPEC)
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise DataError(f"{folder} holds no .yml files; reinstall the package with: "
                        f"pip install --force-reinstall --no-deps {_PIP_SPEC}")
    pairs: list[PromptExample] = []
    rejected: list[RejectedRow] = []
    for path in files:
        shown = f"chatterbot_corpus/{_FOLDER}/{path.name}"
        for line, turns in _conversations(path):
            if len(turns) < 2 or not all(turns[:2]):
                found = f"{len(turns)} turn(s), starting {turns[0][:50]!r}" if turns else "none"
                reason = f"a conversation needs two non-empty turns; found {found}"
                rejected.append(RejectedRow(shown, line, reason))
            else:
                pairs.append(PromptExample(prompt=turns[0], response=turns[1]))
    return pairs, rejected


def _conversations(path: Path) -> list[tuple[int, list[str]]]:
    """``(line, turns)`` per conversation, from the YAML node tree (which keeps line numbers
    and leaves scalars as written). A conversation that is a lone string gives ``[text]``."""
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)
    if not isinstance(root, yaml.MappingNode):
        raise DataError(f"{path}: expected a mapping with a 'conversations' list")
    found = [value for key, value in root.value if key.value == "conversations"]
    if not found or not isinstance(found[0], yaml.SequenceNode):
        raise DataError(f"{path}: expected a mapping with a 'conversations' list")
    conversations: list[tuple[int, list[str]]] = []
    for node in found[0].value:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        turns = [item.value.strip() if isinstance(item, yaml.ScalarNode) else "" for item in items]
        conversations.append((node.start_mark.line + 1, turns))
    return conversations
