"""Dev scores: retrieval nDCG@10 / recall@10 on dev records, STS Spearman, the trainer's log, `bench levers`."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from embedder import PromptEmbedder
from embedder.model import PromptEmbedderConfig
from training.align import attach_backbone
from training.data import Record
from training.dev_score import build_dev_set, dev_scores, retrieval_set
from training.evaluation.metrics import average_ranks, mean_ranking_metrics, spearman
from training.errors import TrainingError
from training.lora_baseline import build_lora_model, lora_config
from training.trainer import TrainConfig, Trainer

INSTRUCTION = "Find the match."


pytestmark = pytest.mark.usefixtures("one_thread")


class LookupModel(torch.nn.Module):
    """Each text is a fixed random unit vector; a query listed in `alias` is the normalised sum of its texts'."""

    def __init__(self, alias: dict[str, list[str]] | None = None):
        super().__init__()
        self.alias, self.modes, self.instructions = alias or {}, [], []

    @staticmethod
    def vector(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        return np.random.default_rng(seed).standard_normal(64)

    def encode(self, texts, instruction=None, batch_size=32):
        self.modes.append(self.training)
        self.instructions.append(instruction)
        vectors = np.stack([sum(self.vector(t) for t in self.alias.get(text, [text])) for text in texts])
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    def encode_document(self, texts, instruction=None, batch_size=32):
        return self.encode(texts, "<document>", batch_size)


def toy_records() -> list[Record]:
    records = [Record(f"question {i}", f"answer {i}", [f"answer {(i + 1) % 6}", f"distractor {i}"], INSTRUCTION, "toy")
               for i in range(6)]
    records.append(Record("question 0", "second answer 0", [], INSTRUCTION, "toy"))  # two relevant documents
    return records


def positives(records: list[Record]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for r in records:
        grouped.setdefault(r.query, []).append(r.positive)
    return grouped


def write_sts(path, rows: list[tuple[float, str, str]]):
    lines = [f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score:.3f}\t{a}\t{b}" for i, (score, a, b) in enumerate(rows)]
    lines[0] += "\textra-source-column"  # STS-B lines sometimes carry extra columns
    path.write_text("\n".join(lines) + "\n")
    return path


# ----- metrics by hand --------------------------------------------------------------------------
def test_spearman_matches_a_hand_computation_with_ties():
    assert average_ranks([10, 20, 20, 20, 5]).tolist() == [2, 4, 4, 4, 1]
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]; deviations (-1.5, 0, 0, 1.5), (-1.5, .5, -.5, 1.5):
    # sum of products 4.5, sums of squares 4.5 and 5 -> 4.5 / sqrt(22.5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0  # a constant side orders nothing


def ndcg_recall_at_k(scores, relevant):
    metrics = mean_ranking_metrics(scores, relevant)
    return metrics["nDCG@10"], metrics["recall@10"]


def test_ndcg_and_recall_by_hand():
    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.0]])
    ndcg, recall = ndcg_recall_at_k(scores, [{0, 2}])  # hits at ranks 1 and 3 of 2 relevant
    assert ndcg == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert recall == 1.0
    deep = np.linspace(1, 0, 12)[None]  # the relevant document ranked 11th: outside the top 10
    assert ndcg_recall_at_k(deep, [{10}]) == (0.0, 0.0)
    assert ndcg_recall_at_k(deep, [{0, 11}]) == pytest.approx((1 / (1 + 1 / math.log2(3)), 0.5))


# ----- dev retrieval ----------------------------------------------------------------------------
def test_a_model_that_embeds_queries_as_their_positives_scores_one():
    records = toy_records()
    perfect = LookupModel(positives(records)).train()
    scores = dev_scores(perfect, records)
    assert scores["dev/toy/ndcg_at_10"] == pytest.approx(1.0) and scores["dev/toy/recall_at_10"] == 1.0
    assert scores["dev/score"] == scores["dev/toy/ndcg_at_10"]
    assert perfect.training and perfect.modes and not any(perfect.modes)  # scored in eval mode, restored
    assert INSTRUCTION in perfect.instructions and "<document>" in perfect.instructions
    queries = sorted(positives(records))
    shuffled = LookupModel({q: positives(records)[queries[(i + 1) % 6]] for i, q in enumerate(queries)})
    assert dev_scores(shuffled, records)["dev/toy/ndcg_at_10"] < 0.6


def test_corpus_is_deduplicated_queries_pooled_and_capped():
    records = toy_records()
    data = retrieval_set(records, ["answer 3", "extra document"], max_queries=200)
    assert len(data.corpus) == len(set(data.corpus)) == 6 + 1 + 6 + 1  # answers, second answer, distractors, extra
    assert len(data.queries) == 6
    assert [data.corpus[i] for i in sorted(data.relevant[data.queries.index("question 0")])] == [
        "answer 0", "second answer 0"]
    capped = retrieval_set(records, [], max_queries=3)
    assert len(capped.queries) == 3 and capped.queries == retrieval_set(records[::-1], [], 3).queries
    # a capped set searches only its own queries' documents: its cost is bounded by the cap
    own = {text for r in records if r.query in capped.queries for text in (r.positive, *r.negatives)}
    assert set(capped.corpus) == own and len(capped.corpus) < len(data.corpus) - 1


def test_cpu_dev_set_is_small_fixed_and_cut_to_the_document_length(tmp_path):
    rows = [(i % 5, f"sentence {i} a", f"sentence {i} b") for i in range(50)]
    path = write_sts(tmp_path / "sts-dev.csv", rows)
    subset = build_dev_set([], sts_path=path, max_sts_pairs=10).sts
    again = build_dev_set([], sts_path=write_sts(tmp_path / "other-dev.csv", rows[::-1]), max_sts_pairs=10).sts
    assert len(subset.scores) == 10 and sorted(subset.first) == sorted(again.first)  # whatever the file order
    long = [Record(f"q{i}", "word " * 300 + str(i), [], INSTRUCTION, "toy") for i in range(4)]
    model = PromptEmbedder.from_config(PromptEmbedderConfig(prompter_weights="full")).to_device("cpu")
    trainer = Trainer(model, toy(8), TrainConfig(str(tmp_path / "run"), batch_size=4, document_length=16,
                                                 progress=False), dev_records=long)
    assert trainer.dev_set.retrieval["toy"].queries and all(
        len(model.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 16
        for text in trainer.dev_set.retrieval["toy"].corpus)


def test_the_query_itself_in_the_corpus_is_not_counted_against_it():
    records = [Record("a b c", "d e f", [], INSTRUCTION, "pairs"), Record("d e f", "a b c", [], INSTRUCTION, "pairs")]
    identity = LookupModel()  # query and document of one text are the same vector
    assert dev_scores(identity, records)["dev/pairs/ndcg_at_10"] == pytest.approx(1.0)


def test_an_extra_beir_corpus_joins_by_text(tmp_path):
    from training.data import read_beir

    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"Title {i}", "text": f"body of document {i}"} for i in range(30)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"claim {i}"}) + "\n"
                                                  for i in range(3)))
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{i}\td{i}\t1\n" for i in range(3)))
    records = read_beir(folder)  # positives formed as the trainer sees them
    dev_set = build_dev_set(records, {"beir:mini": folder / "corpus.jsonl"})
    data = dev_set.retrieval["beir:mini"]
    assert len(data.corpus) == 30  # the positives are found among the corpus texts, not added again
    assert dev_scores(LookupModel(positives(records)), records, {"beir:mini": folder})["dev/beir:mini/ndcg_at_10"] == 1.0
    with pytest.raises(TrainingError, match="beir:other"):
        build_dev_set(records, {"beir:other": folder})


# ----- dev STS ----------------------------------------------------------------------------------
def test_sts_spearman_of_cosines(tmp_path):
    rows = [(5.0, "a man plays", "a man plays"), (3.2, "two dogs", "dogs run"), (0.4, "the sky", "a tax form"),
            (3.2, "a cat", "cats"), (1.0, "red car", "blue sea")]
    path = write_sts(tmp_path / "sts-dev.csv", rows)
    model = LookupModel({"cats": ["a cat"], "dogs run": ["two dogs", "dogs run"]})
    scores = dev_scores(model, [], sts_path=path)
    first, second = (model.encode([r[i] for r in rows]) for i in (1, 2))
    assert scores["dev/sts/spearman"] == pytest.approx(spearman((first * second).sum(1), [r[0] for r in rows]))
    assert scores["dev/sts/spearman"] > 0.5 and scores["dev/score"] == scores["dev/sts/spearman"]
    assert "Retrieve semantically similar text." in model.instructions
    with pytest.raises(TrainingError, match="test split"):
        dev_scores(model, [], sts_path=write_sts(tmp_path / "sts-test.csv", rows))


# ----- the trainer ------------------------------------------------------------------------------
def toy(n: int, offset: int = 0) -> list[Record]:
    return [Record(f"query number {i}", f"document number {i}", [f"other {i}"], INSTRUCTION, "toy")
            for i in range(offset, offset + n)]


def model_for(mode: str):
    torch.manual_seed(0)
    if mode == "lora":
        return build_lora_model(lora_config("tiny-llama", rank=4), device="cpu")
    model = PromptEmbedder.from_config(PromptEmbedderConfig(prompter_weights="lora",
                                                            prompter_lora={"r": 4, "lora_alpha": 8})).to_device("cpu")
    return attach_backbone(model, "tiny-qwen2") if mode == "alignment" else model


@pytest.mark.parametrize("mode", ["prompter", "lora", "alignment"])
def test_trainer_logs_dev_scores_of_the_model_it_saves(tmp_path, mode, capsys):
    sts = write_sts(tmp_path / "sts-dev.csv", [(5.0, "a cat sat", "the cat sat"), (1.0, "a dog", "tax forms"),
                                                (3.0, "red car", "a red auto")])
    dev = toy(6, offset=100)
    config = TrainConfig(str(tmp_path / "run"), mode=mode, max_steps=3, batch_size=4, warmup_steps=1,
                         save_every=0, eval_every=2, progress=False, query_length=8, document_length=8,
                         dev_sts=str(sts), tau_end=0.3)
    model = model_for(mode)
    Trainer(model, toy(12), config, dev_records=dev).train()
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    evaluated = [e for e in log if "dev/score" in e]
    assert [e["step"] for e in evaluated] == [2, 3]
    for entry in evaluated:
        assert {"dev_loss", "dev/toy/ndcg_at_10", "dev/toy/recall_at_10", "dev/sts/spearman", "dev_s"} <= set(entry)
        assert entry["dev/score"] == pytest.approx((entry["dev/toy/ndcg_at_10"] + entry["dev/sts/spearman"]) / 2,
                                                   abs=1e-4)
    assert "step 3: dev/score" in capsys.readouterr().out
    # the last logged score is the saved model's (a reload scores the same). Unmerged: a merged LoRA adapter
    # moves vectors by rounding (~1e-7), enough to reorder this toy set's tied documents
    reloaded = PromptEmbedder.from_pretrained(tmp_path / "run", device="cpu", merge_lora=False)
    again = dev_scores(reloaded, dev, sts_path=sts, document_length=config.document_length)
    assert again["dev/score"] == pytest.approx(evaluated[-1]["dev/score"], abs=1e-4)


def test_dev_corpus_option_is_checked_before_training(tmp_path):
    with pytest.raises(ValueError, match="TASK=PATH"):
        TrainConfig(str(tmp_path / "run"), dev_corpus=["no-equals-sign"]).validate()
    config = TrainConfig(str(tmp_path / "run"), mode="lora", batch_size=4, dev_corpus=[f"beir:missing={tmp_path}/c.jsonl"])
    with pytest.raises(TrainingError, match="beir:missing"):
        Trainer(model_for("lora"), toy(8), config, dev_records=toy(4, offset=50))
    assert not (tmp_path / "run").exists()


# ----- the CLI and `bench levers` ---------------------------------------------------------------
def test_bench_levers_treats_a_missing_setting_as_its_empty_default():
    from training.levers import differing_settings

    old = {"settings": {"lr": 1e-4}}  # from before init_from and task_weights existed
    new = {"settings": {"lr": 1e-4, "init_from": "", "task_weights": {}}}
    assert differing_settings([old, new]) == []
    assert differing_settings([old, {"settings": {"lr": 2e-4, "init_from": "/runs/a"}}]) == ["lr", "init_from"]


def test_bench_levers_tabulates_cli_runs_with_their_differing_setting(tmp_path, capsys):
    from app.cli import main

    data, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in toy(12)))
    dev.write_text("".join(r.to_json() + "\n" for r in toy(4, offset=100)))
    extra = tmp_path / "corpus.jsonl"
    extra.write_text("".join(json.dumps({"_id": str(i), "title": "", "text": f"filler {i}"}) + "\n" for i in range(5)))
    sts = write_sts(tmp_path / "sts-dev.csv", [(5.0, "a cat", "the cat"), (1.0, "a dog", "tax forms")])
    common = ["--data", str(data), "--dev", str(dev), "--backbone", "tiny-llama", "--batch-size", "4",
              "--query-length", "8", "--document-length", "8", "--max-steps", "2", "--eval-every", "1",
              "--save-every", "0", "--no-progress", "--device", "cpu", "--dev-sts", str(sts),
              "--dev-corpus", f"toy={extra}"]
    runs = [tmp_path / "k2", tmp_path / "k3"]
    for run, k in zip(runs, ("2", "3")):
        assert main(["train", *common, "--soft-tokens", k, "-o", str(run)]) == 0
    log = [json.loads(line) for line in (runs[0] / "train_log.jsonl").read_text().splitlines()]
    assert all("dev/toy/ndcg_at_10" in e and "dev/sts/spearman" in e for e in log)
    capsys.readouterr()
    assert main(["bench", "levers", *map(str, runs)]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[:2] == ["run", "num_soft_tokens"]  # the one setting that differs, nothing that does not
    assert {"dev/score", "best dev/score (step)", "toy ndcg@10", "toy recall@10", "sts spearman"} <= set(header)
    assert table[2].startswith("| k2 | 2 | 2 |") and table[3].startswith("| k3 | 3 | 2 |")
    assert main(["bench", "levers", "--json", *map(str, runs)]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["differing_settings"] == ["num_soft_tokens"]
    assert saved["runs"][0]["best_step"] in (1, 2) and "dev/score" in saved["runs"][0]["final"]
    assert main(["bench", "levers", str(tmp_path)]) == 2
    assert "no train_log.jsonl" in capsys.readouterr().err
