"""Evaluation data readers: BEIR folders, STS files, labelled pairs, and their errors."""
from __future__ import annotations

import json

import pytest

from training.errors import TrainingError
from training.evaluation.data import data_hash, query_instruction, read_pair_labels, read_sts
from training.formats import read_beir


def write_beir(folder, docs, queries, qrels, split="test", crlf=True):
    """docs: {id: (title, text)}, queries: {id: text}, qrels: [(query id, doc id, score)]."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in queries.items()))
    end = "\r\n" if crlf else "\n"
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / f"{split}.tsv").write_bytes((end.join(lines) + end).encode())
    return folder


def test_beir_reads_crlf_qrels_with_a_header_and_keeps_only_judged_queries(tmp_path):
    folder = write_beir(tmp_path / "beir", {"d1": ("Cats", "Cats purr."), "d2": ("", "Dogs bark.")},
                        {"q1": "what purrs", "q2": "what barks", "q3": "unjudged"},
                        [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d1", 0)])
    data = read_beir(folder)
    assert data.query_ids == ["q1", "q2"]
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}  # zero-relevance rows are not relevant
    assert data.documents == ["Cats Cats purr.", "Dogs bark."]  # joined as mteb joins title and text


def test_beir_errors_name_the_problem(tmp_path):
    with pytest.raises(TrainingError, match="not a directory"):
        read_beir(tmp_path / "nowhere")
    folder = write_beir(tmp_path / "beir", {"d1": ("", "x")}, {"q1": "y"}, [("q1", "d1", 1)])
    with pytest.raises(TrainingError, match=r"qrels/dev.tsv: no such file \(splits here: test\)"):
        read_beir(folder, "dev")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n")
    with pytest.raises(TrainingError, match=r"test.tsv:2: document 'd9' is not in corpus.jsonl"):
        read_beir(folder)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{not json\n')
    with pytest.raises(TrainingError, match=r"corpus.jsonl:2: not valid JSON"):
        read_beir(folder)
    (folder / "corpus.jsonl").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(TrainingError, match="binary"):
        read_beir(folder)


def test_sts_benchmark_lines_with_extra_columns_and_quotes(tmp_path):
    path = tmp_path / "sts-test.csv"
    path.write_text(
        'main-news\tMSRpar\t2012test\t0001\t4.5\tHe said "yes".\tHe answered "yes".\n'
        "main-forum\tanswers\t2016\t0002\t1.0\tA cat.\tA car.\tsrc1\tsrc2\n")
    data = read_sts(tmp_path, "test")  # a folder finds sts-SPLIT.csv
    assert data.first == ['He said "yes".', "A cat."]
    assert data.second == ['He answered "yes".', "A car."]
    assert data.scores == [4.5, 1.0]


def test_sts_three_columns_with_header_and_bad_rows(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("sentence1\tsentence2\tscore\na\tb\t0.5\n")
    assert read_sts(path).scores == [0.5]
    path.write_text("a\tb\t0.5\nc\td\tlots\n")
    with pytest.raises(TrainingError, match=r"pairs.tsv:2: bad score 'lots'"):
        read_sts(path)
    path.write_text("only one column\n")
    with pytest.raises(TrainingError, match="expected 3 tab-separated columns"):
        read_sts(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="no file for split 'test'"):
        read_sts(tmp_path / "empty")


def test_pair_labels_from_jsonl_and_castorini_folders(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"sentence1": "a", "sentence2": "b", "label": 1}\n'
                    '{"sentence1": "c", "sentence2": "d", "label": 0}\n')
    assert read_pair_labels(path).scores == [1.0, 0.0]
    folder = tmp_path / "twitter" / "train"
    folder.mkdir(parents=True)
    (folder / "a.toks").write_text("x\ny\n")
    (folder / "b.toks").write_text("x2\ny2\n")
    (folder / "sim.txt").write_text("1\n0\n")
    data = read_pair_labels(tmp_path / "twitter", "train")
    assert (data.first, data.scores) == (["x", "y"], [1.0, 0.0])
    (folder / "sim.txt").write_text("1\n3\n")
    with pytest.raises(TrainingError, match="not 0 or 1"):
        read_pair_labels(folder)


def test_data_hash_follows_content_not_line_endings(tmp_path):
    args = ({"d1": ("", "x")}, {"q1": "y"}, [("q1", "d1", 1)])
    a = read_beir(write_beir(tmp_path / "a", *args, crlf=True))
    b = read_beir(write_beir(tmp_path / "b", *args, crlf=False))
    c = read_beir(write_beir(tmp_path / "c", {"d1": ("", "x!")}, {"q1": "y"}, [("q1", "d1", 1)]))
    assert data_hash(a) == data_hash(b) != data_hash(c)


def test_instructions_default_by_dataset_and_can_be_overridden(tmp_path):
    assert query_instruction("retrieval", tmp_path / "scifact").startswith("Given a scientific claim")
    assert query_instruction("sts", tmp_path / "stsbenchmark" / "sts-test.csv") == "Retrieve semantically similar text."
    assert query_instruction("retrieval", tmp_path / "mine", "Find it") == "Find it"
    assert query_instruction("retrieval", tmp_path / "scifact", "") == ""  # none at all
