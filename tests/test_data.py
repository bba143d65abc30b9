"""spadapt.data: reading, validating and splitting user files; the builtin datasets."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from spadapt.data import (
    DataError,
    DatasetSplit,
    Example,
    PromptExample,
    RejectedRow,
    load_dataset,
    read_chatterbot_qa,
)
from spadapt.data.split import group_split, stratified_split


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def jsonl(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def labelled(n_per_label: dict[str, int]) -> str:
    """A CSV with ``n`` rows per label, texts unique."""
    lines = ["text,label"]
    for label, n in n_per_label.items():
        lines += [f"{label} example number {i},{label}" for i in range(n)]
    return "\n".join(lines) + "\n"


# --- bad rows: one error lists them all as file:line: reason ------------------------------

BAD_CSV = (
    b"text,label\n"        # 1
    b"good one,pos\n"      # 2
    b"   ,neg\n"           # 3 whitespace-only text
    b",neg\n"              # 4 empty text
    b"no label,\n"         # 5 empty label
    b"too,many,fields\n"   # 6
    b"too few\n"           # 7
    b'"multi\nline",neg\n'  # 8-9: one record, fine
    b"good two,neg\n"      # 10
) + b"caf\xe9 latin-1,pos\n" + b"good three,pos\n"  # 11 bad UTF-8, 12 good


def test_csv_bad_rows_are_all_listed_with_their_lines(tmp_path):
    path = write(tmp_path, "train.csv", BAD_CSV)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert "6 bad row(s)" in message and "--skip-bad-rows" in message
    for line, reason in [(3, "'text' is only whitespace"), (4, "'text' is empty"),
                         (5, "'label' is empty"), (6, "has 3 fields, the header has 2"),
                         (7, "has 1 fields, the header has 2"), (11, "not valid UTF-8 (byte 0xe9")]:
        assert f"{path}:{line}: {reason}" in message
    assert f"{path}:8:" not in message and f"{path}:12:" not in message


def test_skip_bad_rows_returns_them(tmp_path):
    path = write(tmp_path, "train.csv", BAD_CSV)
    split = load_dataset(path, skip_bad_rows=True, eval_fraction=0.5)
    assert [row.line for row in split.rejected] == [3, 4, 5, 6, 7, 11]
    assert all(row.file == path for row in split.rejected)
    texts = {ex.text for ex in split.train + split.eval}
    assert texts == {"good one", "multi\nline", "good two", "good three"}
    assert split.labels == ["neg", "pos"]


def test_jsonl_bad_rows(tmp_path):
    content = (
        jsonl([{"text": "fine", "label": "a"}])                  # 1
        + '["a", "list"]\n'                                      # 2 not an object
        + '{"text": "broken", "label": \n'                       # 3 invalid JSON
        + jsonl([{"text": "no label"},                           # 4 missing label
                 {"text": "null label", "label": None},          # 5
                 {"text": "", "label": "a"},                     # 6 empty text
                 {"text": 7, "label": "a"},                      # 7 non-string text
                 {"text": "empty label", "label": " "},          # 8
                 {"text": "list label", "label": ["a"]}])        # 9
        + "\n"                                                   # 10 blank: no row
    ).encode() + b'{"text": "\xff", "label": "a"}\n'             # 11 bad UTF-8
    content += jsonl([{"text": "numeric", "label": 3},           # 12 fine: label "3"
                      {"text": "numeric two", "label": 3},       # 13
                      {"text": "fine two", "label": "a"}]).encode()  # 14
    path = write(tmp_path, "train.jsonl", content)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    for line, reason in [(2, "not a JSON object (got a list)"), (3, "invalid JSON ("),
                         (4, "'label' is missing"), (5, "'label' is missing"),
                         (6, "'text' is empty"), (7, "'text' is not a string (got a number)"),
                         (8, "'label' is empty"), (9, "'label' must be a string or a number"),
                         (11, "not valid UTF-8")]:
        assert f"{path}:{line}: {reason}" in message
    assert "9 bad row(s)" in message
    split = load_dataset(path, skip_bad_rows=True, eval_fraction=0.5)
    assert len(split.rejected) == 9 and (len(split.train), len(split.eval)) == (2, 2)
    assert split.labels == ["3", "a"]  # numbers in JSON become their str


def test_error_listing_is_capped_at_50(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\n" + ",x\n" * 120 + "ok,x\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert "120 bad row(s)" in message and "... and 70 more" in message
    assert f"{path}:51:" in message and f"{path}:52:" not in message


def test_bad_rows_in_train_and_eval_are_one_error(tmp_path):
    train = write(tmp_path, "train.csv", "text,label\n,a\nok,a\n")
    test = write(tmp_path, "test.csv", "text,label\nok,\nfine,a\n")
    with pytest.raises(DataError) as err:
        load_dataset(train, test)
    assert f"{train}:2:" in str(err.value) and f"{test}:2:" in str(err.value)
    split = load_dataset(train, test, skip_bad_rows=True)
    assert [(row.file, row.line) for row in split.rejected] == [(train, 2), (test, 2)]
    assert (len(split.train), len(split.eval)) == (1, 1)


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\n,a\n,b\n")
    with pytest.raises(DataError, match="none of its 2 rows is valid"):
        load_dataset(path, skip_bad_rows=True)


# --- line endings: every file:line is the line an editor (or sed -n Np) shows --------------


def lines_reported(*paths: str) -> tuple[str, list[tuple[str, int]], DatasetSplit]:
    """Load ``paths`` (train[, eval]) stopping at bad rows, then skipping them: the error's
    message, the ``(file, line)``s it names (which must be those skipped), and the split."""
    with pytest.raises(DataError) as err:
        load_dataset(*paths, eval_fraction=0.5)
    message = str(err.value)
    named = [(path, int(n)) for path in paths
             for n in re.findall(rf"{re.escape(path)}:(\d+):", message)]
    split = load_dataset(*paths, skip_bad_rows=True, eval_fraction=0.5)
    assert [(row.file, row.line) for row in split.rejected] == named
    return message, named, split


def feedback(n_lines: int, lone_cr: tuple[int, ...], bad: dict[int, str],
             delimiter: str = ",", ending: str = "\n") -> bytes:
    """A text/label file of ``n_lines`` lines (header = line 1): the rows on the lines in
    ``lone_cr`` hold a lone \\r in their text, those in ``bad`` are replaced by the value."""
    lines = [f"text{delimiter}label"]
    for number in range(2, n_lines + 1):
        text = f"line {number} before\rafter" if number in lone_cr else f"line {number}"
        lines.append(bad.get(number, f"{text}{delimiter}{'ab'[number % 2]}"))
    return "".join(line + ending for line in lines).encode()


def test_lone_cr_in_csv_rows_does_not_shift_the_lines_reported(tmp_path):
    path = write(tmp_path, "train.csv", feedback(25, (3, 10, 11), {20: "no comma here"}))
    message, named, split = lines_reported(path)
    assert "1 bad row(s)" in message and named == [(path, 20)]
    assert f"{path}:20: has 1 fields, the header has 2" in message
    texts = {ex.text for ex in split.train + split.eval}
    assert len(texts) == 23 and {"line 3 before after", "line 11 before after"} <= texts


def test_lone_cr_in_tsv_rows_does_not_shift_the_lines_reported(tmp_path):
    content = feedback(16, (2, 4, 5), {8: "two\ttoo\tmany", 13: "\tb"}, delimiter="\t")
    path = write(tmp_path, "train.tsv", content)
    message, named, split = lines_reported(path)
    assert named == [(path, 8), (path, 13)]
    assert f"{path}:8: has 3 fields" in message and f"{path}:13: 'text' is empty" in message
    assert "line 4 before after" in {ex.text for ex in split.train + split.eval}


def test_lone_cr_in_jsonl_lines_does_not_shift_the_lines_reported(tmp_path):
    content = (
        b'{"text": "fine", "label": "a"}\n'                 # 1
        b'{"text": "in a\rstring", "label": "b"}\n'         # 2 lone \r inside the string
        b'{"text": "between",\r"label": "a"}\n'             # 3 lone \r between tokens
        b'{"text": "crlf", "label": "b"}\r\n'               # 4
        b'{"text": "", "label": "a"}\n'                     # 5 empty text
        b'{"text": "x\ry", "label": "b"}\n'                 # 6
        b'{"text": "broken\r", "label" "a"}\n'              # 7 invalid JSON
        b'{"text": "last", "label": "b"}\n'                 # 8
    )
    path = write(tmp_path, "train.jsonl", content)
    message, named, split = lines_reported(path)
    assert named == [(path, 5), (path, 7)] and f"{path}:5: 'text' is empty" in message
    assert f"{path}:7: invalid JSON (Expecting ':' delimiter at column 29)" in message
    assert {ex.text for ex in split.train + split.eval} == {
        "fine", "in a string", "between", "crlf", "x y", "last"}


def test_crlf_file_with_lone_cr_and_a_quoted_multiline_field(tmp_path):
    content = (
        b"text,label\r\n"                  # 1
        b"one\rtwo,a\r\n"                  # 2 lone \r, unquoted
        b'"multi\r\nline\rend",b\r\n'      # 3-4: one record, starts on line 3
        b"too,many,fields\r\n"             # 5
        b'"quoted\rcr",a\r\n'              # 6
        b"x\rcaf\xe9,b\r\n"                # 7 bad UTF-8 after a lone \r
        b"last,b\r\n"                      # 8
    )
    path = write(tmp_path, "train.csv", content)
    message, named, split = lines_reported(path)
    assert named == [(path, 5), (path, 7)]
    assert f"{path}:7: not valid UTF-8 (byte 0xe9 at byte 6 of the line)" in message
    assert {ex.text for ex in split.train + split.eval} == {
        "one two", "multi\nline end", "quoted cr", "last"}


def test_old_mac_cr_only_file_loads_with_its_lines(tmp_path):
    content = b'text,label\rhello,a\r"two\rlines",b\r,a\ragain,a\rmore,b\r'
    path = write(tmp_path, "train.csv", content)
    _, named, split = lines_reported(path)
    assert named == [(path, 5)]  # the row after the 2-line record
    assert sorted(ex.text for ex in split.train + split.eval) == [
        "again", "hello", "more", "two\nlines"]


def test_lone_cr_in_the_eval_file_keeps_its_lines(tmp_path):
    train = write(tmp_path, "train.csv", feedback(9, (3,), {}))
    test = write(tmp_path, "test.csv", feedback(12, (2, 3, 5), {6: ",a", 9: "b\rc"}))
    _, named, split = lines_reported(train, test)
    assert named == [(test, 6), (test, 9)]
    assert len(split.train) == 8 and len(split.eval) == 9
    assert "line 5 before after" in {ex.text for ex in split.eval}
    unknown = write(tmp_path, "unknown.csv", feedback(8, (2, 3), {7: "new\rlabel,c"}))
    with pytest.raises(DataError, match=rf"'c' \(first at {re.escape(unknown)}:7\)"):
        load_dataset(train, unknown)


# --- file-level errors --------------------------------------------------------------------


def test_missing_column_lists_columns_found_and_flag(tmp_path):
    path = write(tmp_path, "train.csv", "sentence,label\nhello,a\nworld,a\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert path in message and "'text'" in message
    assert "columns found: 'sentence', 'label'" in message and "--text-column" in message
    with pytest.raises(DataError, match="--label-column"):
        load_dataset(path, text_column="sentence", label_column="category")
    split = load_dataset(path, text_column="sentence", eval_fraction=0.5)
    assert split.labels == ["a"] and (len(split.train), len(split.eval)) == (1, 1)


def test_missing_column_in_jsonl(tmp_path):
    path = write(tmp_path, "train.jsonl", jsonl([{"body": "x", "label": "a"}]))
    with pytest.raises(DataError, match=r"columns found: 'body', 'label'.*--text-column"):
        load_dataset(path)


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_file(tmp_path, content):
    for name in ("train.csv", "train.jsonl"):
        with pytest.raises(DataError, match="is empty"):
            load_dataset(write(tmp_path, name, content))


def test_header_only_file(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\n")
    with pytest.raises(DataError, match="has a header but no rows"):
        load_dataset(path)


def test_nonexistent_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=f"{path}: no such file"):
        load_dataset(path)


def test_unknown_extension_lists_supported(tmp_path):
    path = write(tmp_path, "train.xlsx", "whatever")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    for ext in (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet"):
        assert ext in str(err.value)


def test_utf16_file_is_named_as_such(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\nhi,a\n".encode("utf-16"))
    with pytest.raises(DataError, match="UTF-16"):
        load_dataset(path)


def test_label_only_in_eval_set(tmp_path):
    train = write(tmp_path, "train.csv", "text,label\nx,a\ny,b\n")
    test = write(tmp_path, "test.csv", "text,label\nz,a\nw,c\nv,d\nu,c\n")
    with pytest.raises(DataError) as err:
        load_dataset(train, test)
    message = str(err.value)
    assert test in message and "'c' (first at" in message and "'d'" in message
    assert f"{test}:3" in message  # the first eval row with label c
    assert "'a'" not in message


def test_unclosed_quote_is_reported(tmp_path):
    path = write(tmp_path, "train.csv", 'text,label\nok,a\n"oops,a\nmore,a\n')
    with pytest.raises(DataError, match=rf"{path}:3: malformed CSV"):
        load_dataset(path)


def test_bom_and_crlf_are_fine(tmp_path):
    content = b"\xef\xbb\xbftext,label\r\nhello,a\r\nworld,b\r\nagain,a\r\nmore,b\r\n"
    split = load_dataset(write(tmp_path, "train.csv", content), eval_fraction=0.5)
    assert sorted(ex.text for ex in split.train + split.eval) == ["again", "hello", "more",
                                                                  "world"]


def test_unknown_task_and_builtin_with_eval_file(tmp_path):
    path = write(tmp_path, "train.csv", labelled({"a": 5}))
    with pytest.raises(DataError, match="unknown task"):
        load_dataset(path, task="regression")
    with pytest.raises(DataError, match="own eval split"):
        load_dataset("builtin:rotten_tomatoes", path)
    with pytest.raises(DataError, match="unknown builtin dataset.*builtin:reuters_r8"):
        load_dataset("builtin:imdb")


# --- formats ------------------------------------------------------------------------------


def test_tsv_round_trip(tmp_path):
    rows = [("a \"quoted\" word, and a comma", "pos"), ("second\ttab-free text", "neg")]
    content = "text\tlabel\n" + "".join(f"{t.replace(chr(9), ' ')}\t{lab}\n" for t, lab in rows)
    content += '"tab\tinside"\tpos\n'
    split = load_dataset(write(tmp_path, "train.tsv", content), eval_fraction=0.3)
    texts = {ex.text for ex in split.train + split.eval}
    assert texts == {'a "quoted" word, and a comma', "second tab-free text", "tab\tinside"}
    assert split.name == "train.tsv" and split.labels == ["neg", "pos"]


def test_parquet_round_trip_and_bad_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": ["one", "two", None, "four", "  ", "six"],
                      "label": [1, 0, 1, 0, 1, None],
                      "unused": [0.5] * 6})
    path = str(tmp_path / "train.parquet")
    pq.write_table(table, path, row_group_size=4)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert f"{path}:row 3: 'text' is missing" in message
    assert f"{path}:row 5: 'text' is only whitespace" in message
    assert f"{path}:row 6: 'label' is missing" in message
    split = load_dataset(path, skip_bad_rows=True, eval_fraction=0.5)
    assert split.labels == ["0", "1"]
    assert sorted((ex.text, split.labels[ex.label]) for ex in split.train + split.eval) == [
        ("four", "0"), ("one", "1"), ("two", "0")]
    assert str(split.rejected[0]) == f"{path}:row 3: 'text' is missing"


def test_parquet_missing_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "train.parquet")
    pq.write_table(pa.table({"review": ["x"], "label": ["a"]}), path)
    with pytest.raises(DataError, match=r"columns found: 'review', 'label'.*--text-column"):
        load_dataset(path)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    path = write(tmp_path, "train.parquet", b"PAR1")
    with pytest.raises(DataError, match="pip install pyarrow"):
        load_dataset(path)


def test_causal_lm_is_inferred_from_columns(tmp_path):
    rows = [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(10)]
    rows.append({"prompt": "q", "response": ""})
    path = write(tmp_path, "chat.ndjson", jsonl(rows))
    with pytest.raises(DataError, match=rf"{path}:11: 'response' is empty"):
        load_dataset(path)
    split = load_dataset(path, skip_bad_rows=True)
    assert split.task == "causal_lm" and split.labels == []
    assert (len(split.train), len(split.eval)) == (8, 2)
    assert all(isinstance(ex, PromptExample) for ex in split.train + split.eval)
    with pytest.raises(DataError, match="--label-column"):  # asked for classification
        load_dataset(path, task="classification", text_column="prompt")


# --- split --------------------------------------------------------------------------------


def test_stratified_split_proportions_and_determinism(tmp_path):
    path = write(tmp_path, "train.csv", labelled({"a": 100, "b": 50, "c": 10, "solo": 1}))
    split = load_dataset(path, seed=3, eval_fraction=0.2)
    assert isinstance(split, DatasetSplit) and split.task == "classification"
    assert split.labels == ["a", "b", "c", "solo"]
    count = Counter(split.labels[ex.label] for ex in split.eval)
    assert count == {"a": 20, "b": 10, "c": 2}  # the single "solo" example stays in train
    assert len(split.train) == 161 - 32
    assert not {ex.text for ex in split.train} & {ex.text for ex in split.eval}
    again = load_dataset(path, seed=3, eval_fraction=0.2)
    assert (again.train, again.eval) == (split.train, split.eval)
    other = load_dataset(path, seed=4, eval_fraction=0.2)
    assert {ex.text for ex in other.eval} != {ex.text for ex in split.eval}


def test_integer_labels_sort_numerically(tmp_path):
    path = write(tmp_path, "train.csv", labelled({"10": 3, "2": 3, "-1": 3}))
    assert load_dataset(path).labels == ["-1", "2", "10"]


def test_duplicates_are_kept(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\nsame,a\nsame,a\nsame,b\nother,b\n")
    split = load_dataset(path, eval_fraction=0.5)
    assert len(split.train) + len(split.eval) == 4


def test_eval_file_means_no_split(tmp_path):
    train = write(tmp_path, "train.csv", labelled({"a": 3, "b": 2}))
    test = write(tmp_path, "test.jsonl", jsonl([{"text": "t", "label": "b"}]))
    split = load_dataset(train, test)
    assert len(split.train) == 5 and split.eval == [Example("t", 1)]
    assert split.rejected == []


def test_same_file_as_train_and_eval_reports_bad_rows_once(tmp_path):
    path = write(tmp_path, "test.csv", "text,label\nx,a\n,b\ny,b\n")
    split = load_dataset(path, path, skip_bad_rows=True)
    assert len(split.rejected) == 1 and len(split.train) == len(split.eval) == 2
    assert vars(split.rejected[0]) == {"file": path, "line": 3, "reason": "'text' is empty"}


def test_too_few_rows_to_split(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\nx,a\ny,b\n")
    with pytest.raises(DataError, match="--eval-data"):
        load_dataset(path)


def test_split_helpers():
    train, evaluation = stratified_split([0] * 10 + [1] * 5 + [2], seed=0, eval_fraction=0.2)
    assert sorted(train + evaluation) == list(range(16)) and len(evaluation) == 3
    groups = ["g1"] * 5 + ["g2"] * 2 + [f"s{i}" for i in range(13)]
    train, evaluation = group_split(groups, seed=0, eval_fraction=0.25)
    assert sorted(train + evaluation) == list(range(20)) and len(evaluation) == 5
    for group in ("g1", "g2"):  # a group never straddles
        sides = {i in evaluation for i, g in enumerate(groups) if g == group}
        assert len(sides) == 1


# --- builtins -----------------------------------------------------------------------------


def test_builtin_rotten_tomatoes_via_load_dataset():
    split = load_dataset("builtin:rotten_tomatoes")
    assert (split.name, split.task, split.labels) == ("builtin:rotten_tomatoes",
                                                      "classification", ["rotten", "fresh"])
    assert (len(split.train), len(split.eval)) == (10201, 2551)
    assert split.rejected == []


def test_builtin_reuters_r8_counts():
    split = load_dataset("builtin:reuters_r8")
    train = Counter(split.labels[ex.label] for ex in split.train)
    test = Counter(split.labels[ex.label] for ex in split.eval)
    print("reuters_r8 train", dict(train), "test", dict(test))
    assert split.labels == ["acq", "crude", "earn", "grain", "interest", "money-fx", "ship",
                            "trade"]
    assert (len(split.train), len(split.eval)) == (5485, 2189)
    assert train == {"earn": 2840, "acq": 1596, "crude": 253, "trade": 251, "money-fx": 206,
                     "interest": 190, "ship": 108, "grain": 41}
    assert test == {"earn": 1083, "acq": 696, "crude": 121, "money-fx": 87, "interest": 81,
                    "trade": 75, "ship": 36, "grain": 10}
    assert all(ex.text == " ".join(ex.text.split()) and ex.text for ex in split.train)


def test_builtin_reuters_r52_and_newsgroups20_counts():
    r52 = load_dataset("builtin:reuters_r52")
    assert (len(r52.train), len(r52.eval), len(r52.labels)) == (6532, 2568, 52)
    r52_train = Counter(r52.labels[ex.label] for ex in r52.train)
    assert r52_train.most_common(2) == [("earn", 2840), ("acq", 1596)]
    assert min(r52_train.values()) == 1  # some topics have one training story
    news = load_dataset("builtin:newsgroups20")
    assert (len(news.train), len(news.eval), len(news.labels)) == (11293, 7528, 20)
    assert news.labels[:3] == ["alt.atheism", "comp.graphics", "comp.os.ms-windows.misc"]
    assert Counter(news.labels[ex.label] for ex in news.train)["rec.sport.hockey"] == 600
    for split in (r52, news):
        assert split.task == "classification" and split.rejected == []
        assert all(ex.text == " ".join(ex.text.split()) and ex.text for ex in split.eval)


def test_builtin_chatterbot_qa_counts():
    pairs, rejected = read_chatterbot_qa()
    split = load_dataset("builtin:chatterbot_qa", seed=0)
    print("chatterbot_qa pairs", len(pairs), "distinct", len(set(pairs)),
          "train", len(split.train), "eval", len(split.eval), "rejected", rejected)
    assert len(pairs) == 2025 and len(set(pairs)) == 897
    assert rejected == [RejectedRow("chatterbot_corpus/data/english/trivia.yml", 35,
                                    rejected[0].reason)]
    assert split.task == "causal_lm" and split.labels == [] and split.rejected == rejected
    assert (len(split.train), len(split.eval)) == (718, 179)
    assert not {ex.prompt for ex in split.train} & {ex.prompt for ex in split.eval}
    assert PromptExample("In what year were the first Air Jordan sneakers released?",
                         "1984") in split.train + split.eval  # a quoted YAML number stays text
    assert load_dataset("builtin:chatterbot_qa", seed=0).eval == split.eval
    with pytest.raises(DataError, match="causal_lm dataset"):
        load_dataset("builtin:chatterbot_qa", task="classification")
