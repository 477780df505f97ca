"""Training data: readers, malformed input, the task mixture, BM25 mining."""
from __future__ import annotations

import json

import pytest

from training.data import Problems, Record, Source, read_beir, read_jsonl, read_qa, read_sources, read_sts, split_dev
from training.errors import TrainingError
from training.mixture import TaskMixture


def write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_jsonl_records_with_defaults(tmp_path):
    path = write(tmp_path / "r.jsonl", "\n".join([
        json.dumps({"instruction": "Find it.", "query": "q1", "positive": "p1", "negatives": ["n1", "q1", "n1"]}),
        "",
        json.dumps({"query": "q2", "positive": "p2", "task": "other"}),
    ]) + "\n")
    first, second = read_jsonl(path)
    assert (first.instruction, first.negatives, first.task) == ("Find it.", ["n1"], "jsonl:r")
    assert second.task == "other" and second.instruction  # a default instruction, never empty
    assert second.negatives == []


@pytest.mark.parametrize("line, reason", [
    ('{"query": "q", "positive": ', "not valid JSON"),
    ('["q", "p"]', "expected a JSON object"),
    ('{"query": "", "positive": "p"}', "'query' must be a non-empty string"),
    ('{"query": "q"}', "'positive' must be a non-empty string"),
    ('{"query": "q", "positive": "p", "negatives": [1]}', "'negatives' must be a list"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, line, reason):
    good = json.dumps({"query": "a", "positive": "b"})
    path = write(tmp_path / "bad.jsonl", f"{good}\n{good}\n{line}\n{good}\n")
    with pytest.raises(TrainingError) as info:
        read_jsonl(path)
    message = str(info.value)
    assert f"{path}:3:" in message and reason in message
    problems = Problems("skip")
    assert len(read_jsonl(path, problems=problems)) == 3
    assert len(problems.messages) == 1 and problems.messages[0].startswith(f"{path}:3:")


def test_invalid_utf8_line_is_reported(tmp_path):
    path = write(tmp_path / "bin.jsonl", b'{"query": "a", "positive": "b"}\n\xff\xfe junk\n')
    with pytest.raises(TrainingError, match=r"bin\.jsonl:2: not valid UTF-8"):
        read_jsonl(path)


def test_empty_source_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="no usable records"):
        read_sources([str(write(tmp_path / "empty.jsonl", "\n"))])
    with pytest.raises(FileNotFoundError):
        read_sources([str(tmp_path / "missing.jsonl")])


def test_sts_high_scores_are_pairs_quotes_and_extra_columns_kept(tmp_path):
    path = write(tmp_path / "sts.csv", "\n".join([
        'main\tMSRvid\t2012\t1\t5.000\tA "quoted" plane.\tAn air plane.\textra\tcolumns',
        "main\tMSRvid\t2012\t2\t1.000\tA man.\tA dog.",
        "main\tMSRvid\t2012\t3\t4.000\tTwo cats.\tA pair of cats.",
    ]) + "\n")
    records = read_sts(path)
    assert [(r.query, r.positive) for r in records] == [('A "quoted" plane.', "An air plane."),
                                                       ("Two cats.", "A pair of cats.")]
    bad = write(tmp_path / "bad.csv", "main\tx\t2012\t1\tfive\ta\tb\n")
    with pytest.raises(TrainingError, match=r"bad\.csv:1: bad score 'five'"):
        read_sts(bad)


def test_beir_folder_with_header_and_crlf(tmp_path):
    folder = tmp_path / "sci"
    (folder / "qrels").mkdir(parents=True)
    write(folder / "corpus.jsonl", '{"_id": "d1", "title": "T", "text": "body one"}\n{"_id": "d2", "text": "body two"}\n')
    write(folder / "queries.jsonl", '{"_id": "1", "text": "claim one"}\n{"_id": "2", "text": "claim two"}\n')
    write(folder / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n2\td2\t1\r\n2\td1\t0\r\n")
    records = read_beir(folder)
    assert [(r.query, r.positive, r.task) for r in records] == [
        ("claim one", "T body one", "beir:sci"), ("claim two", "body two", "beir:sci")]
    write(folder / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\n1\tmissing\t1\n")
    with pytest.raises(TrainingError, match=r"train\.tsv:2: document 'missing'"):
        read_beir(folder)


def test_qa_pairs_and_source_specs(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"id": "1", "question": "What is X?", "answer": "X is y."}\n')
    assert read_qa(path)[0].positive == "X is y."
    source = Source.parse(f"qa:{path}::Answer medical questions.")
    assert (source.kind, source.path, source.instruction) == ("qa", path, "Answer medical questions.")
    assert Source.parse(str(path)).kind == "jsonl"
    records, problems = read_sources([f"qa:{path}::Answer it."])
    assert records[0].instruction == "Answer it." and records[0].task == "qa:pairs" and problems == []


def test_dev_split_is_by_query():
    records = [Record(f"q{i % 50}", f"p{i}", task="t") for i in range(200)]
    train, dev = split_dev(records, 0.2, seed=1)
    assert dev and train and len(train) + len(dev) == 200
    assert not {r.query for r in train} & {r.query for r in dev}


def records_with_duplicates(n: int = 60) -> list[Record]:
    records = [Record(f"query {i}", f"doc {i % 25}", [f"neg {i % 7}"], "I", "a" if i % 3 else "b") for i in range(n)]
    return records


def test_mixture_batches_are_single_task_without_duplicate_texts():
    mixture = TaskMixture(records_with_duplicates(), batch_size=4, seed=3)
    batches = mixture.epoch(0)
    assert batches
    for batch in batches:
        assert len(batch) == 4 and len({r.task for r in batch}) == 1
        texts = [t for r in batch for t in r.texts()]
        assert len(texts) == len(set(texts))
    assert [[r.query for r in b] for b in batches] == [[r.query for r in b] for b in TaskMixture(
        records_with_duplicates(), batch_size=4, seed=3).epoch(0)]
    assert [[r.query for r in b] for b in mixture.epoch(1)] != [[r.query for r in b] for b in batches]


def test_task_weights_scale_each_tasks_share_of_batches():
    records = [Record(f"q{i}", f"p{i}", [], "I", "big") for i in range(40)] + \
        [Record(f"x{i}", f"y{i}", [], "I", "small") for i in range(8)]

    def counts(weights):
        batches = TaskMixture(records, batch_size=4, seed=1, weights=weights).epoch(0)
        return {task: sum(b[0].task == task for b in batches) for task in ("big", "small")}

    assert counts(None) == {"big": 10, "small": 2}
    assert counts({"small": 3}) == {"big": 10, "small": 6}  # three shuffles of the small task
    assert counts({"big": 0.5, "small": 0}) == {"big": 5, "small": 0}
    with pytest.raises(ValueError, match="unknown task"):
        TaskMixture(records, batch_size=4, weights={"missing": 2})


def test_sources_that_share_a_file_name_stay_separate_tasks(tmp_path):
    for folder in ("squad", "snli"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pairs.jsonl").write_text(json.dumps({"query": f"{folder} q", "positive": "p"}) + "\n")
    records, _ = read_sources([f"jsonl:{tmp_path}/squad/pairs.jsonl::Answer it.",
                               f"jsonl:{tmp_path}/snli/pairs.jsonl::Entail it."])
    assert [(r.task, r.instruction) for r in records] == [("jsonl:squad/pairs", "Answer it."),
                                                         ("jsonl:snli/pairs", "Entail it.")]
    alone, _ = read_sources([f"jsonl:{tmp_path}/snli/pairs.jsonl"])
    assert alone[0].task == "jsonl:pairs"  # a unique name stays as it was


def test_mixture_stream_resumes_at_the_same_place():
    mixture = TaskMixture(records_with_duplicates(), batch_size=4, seed=0)
    stream = mixture.stream()
    first = [next(stream) for _ in range(40)]  # crosses epoch boundaries
    resumed = mixture.stream(skip=23)
    assert [[r.query for r in next(resumed)] for _ in range(17)] == [[r.query for r in b] for b in first[23:]]


def test_mixture_refuses_a_batch_no_task_can_fill():
    with pytest.raises(ValueError, match="lower --batch-size"):
        TaskMixture(records_with_duplicates(6), batch_size=8)


def test_bm25_negatives_are_never_positives():
    pytest.importorskip("bm25s")
    from training.mining import mine_hard_negatives

    records = [Record("cats on mats", "a cat sat on the mat", task="t"),
               Record("cats on mats", "the mat had a cat", task="t"),
               Record("dogs in parks", "a dog runs in the park", task="t"),
               Record("python code", "python is a programming language", task="t")]
    mine_hard_negatives(records, count=2)
    for record in records:
        own = {r.positive for r in records if r.query == record.query}
        assert record.negatives and not own & set(record.negatives)
    assert records[0].negatives[0] != "the mat had a cat"


def test_the_trainer_split_of_a_prepared_dev_file_is_not_all_dev():
    records = [Record(f"q{i}", f"p{i}", task="t") for i in range(400)]
    _, prepared_dev = split_dev(records, 0.1, seed=0, salt="prepare")
    train, dev = split_dev(prepared_dev, 0.1, seed=0)
    assert train and len(dev) < len(prepared_dev) / 2
    with pytest.raises(TrainingError, match="left no training record"):
        split_dev(records[:1], 0.99, seed=0)


def test_prepare_data_refuses_a_file_as_output_first_and_names_unrankable_data(tmp_path, capsys):
    from app.cli import main

    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"query": q, "positive": p}) + "\n"
                            for q, p in [("the of and", "a the of"), ("is it", "and or the"), ("to be", "or not")]))
    (tmp_path / "taken").write_text("x")
    assert main(["prepare-data", "--data", f"jsonl:{data}", "-o", str(tmp_path / "taken")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["prepare-data", "--data", f"jsonl:{data}", "-o", str(tmp_path / "out")]) == 2
    assert "no word BM25 can rank" in capsys.readouterr().err  # was: max() arg is an empty sequence
