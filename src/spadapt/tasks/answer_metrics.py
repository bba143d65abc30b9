"""How close a generated answer is to the reference: normalised exact match and ROUGE-L F1.

Normalisation (both metrics' input): case-folded, whitespace collapsed, trailing punctuation
dropped ("Paris." and " paris" match "Paris"). ROUGE-L is `rouge-score`'s implementation
(Google Research's, the one behind most published ROUGE numbers) with its own tokenizer
replaced by one that also splits Chinese, Japanese and Korean text into characters: the
default drops every character outside a-z and 0-9, so Japanese answers would all score 0.
No stemming, so that a score does not depend on the language.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

# One token per CJK character (Hiragana, Katakana, CJK ideographs, Hangul); other tokens are
# runs of letters and digits.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_TRAILING = re.compile(r"[\s\W_]+$")


def normalise_answer(text: str) -> str:
    """`text` case-folded (NFKC), whitespace collapsed, trailing punctuation removed."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return _TRAILING.sub("", text)


def exact_match(answers: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of answers equal to their reference after `normalise_answer`."""
    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers for {len(references)} references")
    hits = sum(normalise_answer(a) == normalise_answer(r)
               for a, r in zip(answers, references, strict=True))
    return hits / max(1, len(references))


class _Tokenizer:
    """rouge-score's tokenizer protocol: `tokenize(text) -> list[str]`."""

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


@functools.cache
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=_Tokenizer())


def rouge_l(answers: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 of answers against their references (0 for an empty answer)."""
    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers for {len(references)} references")
    scores = [_scorer().score(r, a)["rougeL"].fmeasure
              for a, r in zip(answers, references, strict=True)]
    return sum(scores) / max(1, len(scores))


def short_answers(references: Sequence[str], words: int = 5) -> bool:
    """Whether every reference is at most `words` tokens: then exact match is the fair
    metric; longer answers are judged by ROUGE-L."""
    return all(len(_Tokenizer().tokenize(r)) <= words for r in references)
