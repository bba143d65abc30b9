"""``builtin:country_qa``: the counts of countryinfo 1.0.1's files, the split by country, the
listing and the error when the package is missing."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter

import pytest

from spadapt.data import BUILTIN_DATASETS, DataError, PromptExample, load_dataset
from spadapt.data.country_qa import QUESTIONS, read_country_qa

NAME = "builtin:country_qa"


def test_country_qa_counts_and_dropped_fields():
    facts, dropped = read_country_qa()
    assert len(facts) + len(dropped) == 254 * len(QUESTIONS) == 2032
    assert len(facts) == 1951 and len(set(facts)) == 1946
    assert Counter((field, reason) for _, field, reason in dropped) == {
        ("callingCodes", "missing"): 17, ("demonym", "missing"): 17,
        ("currencies", "missing"): 15, ("capital", "missing"): 5, ("region", "missing"): 2,
        ("subregion", "missing"): 2, ("currencies", "several values"): 14,
        ("callingCodes", "several values"): 5, ("demonym", "several values"): 3,
        ("capital", "several values"): 1}
    assert ("countryinfo/data/bhutan.json", "currencies", "several values") in dropped
    repeats = Counter(facts) - Counter(set(facts))
    assert sum(repeats.values()) == 5 and {code for code, _ in repeats} == {"CUW"}
    distinct = list(dict.fromkeys(facts))
    assert len({code for code, _ in distinct}) == 251
    assert len({pair.prompt for _, pair in distinct}) == 1946  # one answer per prompt
    fields = Counter(field for _, pair in distinct for field, question in QUESTIONS.items()
                     if re.fullmatch(re.escape(question).replace(r"\{\}", ".+"), pair.prompt))
    assert fields == {"capital": 247, "region": 251, "subregion": 251, "currencies": 225,
                      "callingCodes": 232, "demonym": 234, "ISO.alpha2": 253,
                      "ISO.alpha3": 253}  # 1,946: each prompt fits one question
    for _, pair in distinct:
        assert pair.prompt and pair.response and pair.response == pair.response.strip()
        assert len(pair.response.split()) <= 7 and "/" not in pair.response
    assert ("KEN", PromptExample("What is the capital of Kenya?", "Nairobi")) in distinct
    assert ("KEN", PromptExample("What is the ISO 4217 code of the currency of Kenya?",
                                 "KES")) in distinct
    assert ("KEN", PromptExample("What is the international calling code of Kenya?",
                                 "254")) in distinct


def test_country_qa_split_is_by_country_and_deterministic():
    code_of = {pair.prompt: code for code, pair in read_country_qa()[0]}
    split = load_dataset(NAME, seed=0)
    assert split.task == "causal_lm" and split.labels == [] and split.rejected == []
    assert (len(split.train), len(split.eval)) == (1557, 389)
    train_codes = {code_of[ex.prompt] for ex in split.train}
    eval_codes = {code_of[ex.prompt] for ex in split.eval}
    assert not train_codes & eval_codes and len(train_codes | eval_codes) == 251
    again = load_dataset(NAME, seed=0)
    assert again.train == split.train and again.eval == split.eval
    other = load_dataset(NAME, seed=1)
    assert set(other.eval) != set(split.eval)
    assert not {code_of[ex.prompt] for ex in other.train} & {code_of[ex.prompt]
                                                              for ex in other.eval}
    with pytest.raises(DataError, match="causal_lm dataset"):
        load_dataset(NAME, task="classification")


def test_country_qa_is_listed():
    assert "1,946" in BUILTIN_DATASETS[NAME] and "countryinfo" in BUILTIN_DATASETS[NAME]
    with pytest.raises(DataError) as err:
        load_dataset("builtin:no_such_set")
    assert NAME in str(err.value)


def test_missing_countryinfo_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "countryinfo" else real(name, *a))
    with pytest.raises(DataError, match=r"needs the package countryinfo .*"
                                        r"pip install --no-deps countryinfo==1\.0\.1"):
        load_dataset(NAME)
