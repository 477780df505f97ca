"""mteb scoring through our adapter and local tasks, with fake encoders whose scores are known."""
from __future__ import annotations

import numpy as np
import pytest

from tests.test_eval_data import write_beir
from training.formats import read_beir
from training.instructions import DATASET_INSTRUCTIONS as KNOWN_INSTRUCTIONS
from training.instructions import TASK_INSTRUCTIONS as DEFAULT_INSTRUCTIONS
from training.evaluation.runner import EvalRequest, evaluate

DOCS = {f"d{i}": (f"Title {i}", f"text {i} about {w}") for i, w in enumerate(["cats", "dogs", "python", "search",
                                                                               "mats", "parks", "rain", "snow"])}
QUERIES = {f"q{i}": f"which one is about {x.split()[-1]}" for i, (_, x) in enumerate(DOCS.values())}
QRELS = [(f"q{i}", f"d{i}", 1) for i in range(len(DOCS))]


class TableEncoder:
    """Looks each text up in a table of vectors; records what mteb asked for."""

    name, fingerprint, device, dimension = "table", "fake0000", "cpu", 0  # dimension: not read by the evaluation

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors, self.calls = vectors, []

    def _encode(self, texts, instruction, side):
        self.calls.append((side, instruction, len(texts)))
        rows = np.stack([self.vectors[t] for t in texts]).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def encode(self, texts, instruction=None):
        return self._encode(texts, instruction, "query")

    def encode_document(self, texts, instruction=None):
        return self._encode(texts, instruction, "document")


@pytest.fixture
def beir(tmp_path):
    return write_beir(tmp_path / "beir", DOCS, QUERIES, QRELS)


def retrieval_encoder(beir, shift: int) -> TableEncoder:
    """Query i gets the vector of document i + shift: shift 0 embeds each query exactly like its document."""
    data = read_beir(beir)
    eye = np.eye(len(data.corpus_ids))
    vectors = {doc: eye[i] + 0.01 * i for i, doc in enumerate(data.documents)}  # +0.01*i: no ties
    n = len(data.corpus_ids)
    vectors |= {q: eye[(i + shift) % n] + 0.01 * ((i + shift) % n) for i, q in enumerate(data.queries)}
    return TableEncoder(vectors)


def test_query_embedded_like_its_document_scores_ndcg_1_and_a_shuffled_one_lower(beir):
    perfect = evaluate(EvalRequest("table", "retrieval", str(beir)), model=retrieval_encoder(beir, 0))
    assert perfect["metric"] == "ndcg_at_10"
    assert perfect["headline"] == {"ndcg_at_10": 1.0, "map_at_100": 1.0, "recall_at_100": 1.0, "mrr_at_10": 1.0}
    shuffled_encoder = retrieval_encoder(beir, 3)
    shuffled = evaluate(EvalRequest("table", "retrieval", str(beir), instruction="Find it"), model=shuffled_encoder)
    assert shuffled["value"] < 0.8
    assert shuffled["headline"]["mrr_at_10"] < 1.0
    # queries got the instruction, documents the model's own document side (None)
    assert ("query", "Find it", len(QUERIES)) in shuffled_encoder.calls
    assert ("document", None, len(DOCS)) in shuffled_encoder.calls


def test_sts_spearman_matches_the_hand_computed_value(tmp_path):
    cosines = [0.9, 0.1, 0.5, 0.7, 0.95]
    gold = [1.0, 2.0, 3.0, 4.0, 5.0]
    lines, vectors = [], {}
    for i, c in enumerate(cosines):
        a, b = f"first {i}", f"second {i}"
        vectors[a], vectors[b] = np.array([1.0, 0.0]), np.array([c, np.sqrt(1 - c * c)])
        lines.append(f"{a}\t{b}\t{gold[i]}")
    (tmp_path / "sts.tsv").write_text("\n".join(lines) + "\n")
    encoder = TableEncoder(vectors)
    result = evaluate(EvalRequest("table", "sts", str(tmp_path / "sts.tsv")), model=encoder)
    # ranks of the cosines: 4 1 2 3 5 against 1 2 3 4 5 -> d^2 = 9+1+1+1+0 = 12 -> 1 - 6*12/(5*24) = 0.4
    assert result["metric"] == "spearman"
    assert result["value"] == pytest.approx(0.4)
    assert {side for side, _, _ in encoder.calls} == {"query"}  # both sides of a symmetric task
    assert {instruction for _, instruction, _ in encoder.calls} == {"Retrieve semantically similar text."}
    bare = TableEncoder(vectors)
    evaluate(EvalRequest("table", "sts", str(tmp_path / "sts.tsv"), instruction=""), model=bare)
    assert {instruction for _, instruction, _ in bare.calls} == {""}  # '' means no instruction, not the default


def test_pair_classification_average_precision(tmp_path):
    rows, vectors = [], {}
    for i, (c, label) in enumerate([(0.9, 1), (0.8, 1), (0.2, 0), (0.1, 0)]):
        a, b = f"a{i}", f"b{i}"
        vectors[a], vectors[b] = np.array([1.0, 0.0]), np.array([c, np.sqrt(1 - c * c)])
        rows.append(f'{{"sentence1": "{a}", "sentence2": "{b}", "label": {label}}}')
    (tmp_path / "pairs.jsonl").write_text("\n".join(rows) + "\n")
    result = evaluate(EvalRequest("table", "pairs", str(tmp_path / "pairs.jsonl")), model=TableEncoder(vectors))
    assert result["metric"] == "ap" and result["value"] == pytest.approx(1.0)


def test_bm25_through_mteb_finds_the_document_sharing_the_query_words(beir):
    result = evaluate(EvalRequest("bm25", "retrieval", str(beir)))
    assert result["value"] == pytest.approx(1.0)
    assert result["device"] == "cpu"


def test_the_adapter_passes_mteb_own_encoder_checks_on_mteb_mock_tasks():
    import mteb
    from mteb.mocks.mock_tasks import (MockClassificationTask, MockPairClassificationTask, MockRerankingTask,
                                       MockRetrievalTask, MockSTSTask)
    from mteb.models import EncoderProtocol

    from embedder import PromptEmbedder
    from training.evaluation.encoders import EmbedderEncoder
    from training.evaluation.mteb_adapter import MtebEncoder

    model = MtebEncoder(EmbedderEncoder(PromptEmbedder.from_pretrained("tiny", device="cpu"), "tiny"))
    assert isinstance(model, EncoderProtocol)
    assert model.mteb_model_meta.revision == model.encoder.fingerprint
    tasks = [MockRetrievalTask(), MockSTSTask(), MockPairClassificationTask(), MockClassificationTask(),
             MockRerankingTask()]
    result = mteb.evaluate(model, tasks, cache=None, co2_tracker=False, show_progress_bar=False)
    assert not result.exceptions
    assert len(result.task_results) == len(tasks)
    for task_result in result.task_results:
        assert np.isfinite(task_result.get_score())


def test_default_instructions_are_still_mteb_own():
    from mteb.abstasks.pair_classification import AbsTaskPairClassification
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS
    import mteb

    assert DEFAULT_INSTRUCTIONS == {"retrieval": AbsTaskRetrieval.abstask_prompt, "sts": AbsTaskSTS.abstask_prompt,
                                    "pairs": AbsTaskPairClassification.abstask_prompt}
    assert KNOWN_INSTRUCTIONS["scifact"] == mteb.get_task("SciFact").metadata.prompt["query"]
