"""mteb tasks over data read from disk, so scoring is mteb's own code (RetrievalEvaluator with
pytrec_eval, AnySTSEvaluator, PairClassificationEvaluator) and nothing touches a dataset hub.

The glue is small: mteb's task classes load their data from the hub in `load_data`; ours set
`self.dataset` from the local reader instead and build their TaskMetadata per instance (the
dataset "revision" is the data hash, so mteb's result bookkeeping tells datasets apart).
"""
from __future__ import annotations

from datasets import Dataset
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata

from training.formats import PairData, RetrievalData

from .data import data_hash

MTEB_TYPES = {"retrieval": ("Retrieval", "ndcg_at_10"), "sts": ("STS", "cosine_spearman"),
              "pairs": ("PairClassification", "max_ap")}


def _metadata(task: str, dataset: str, split: str, revision: str, instruction: str) -> TaskMetadata:
    kind, main_score = MTEB_TYPES[task]
    return TaskMetadata(
        name=f"Local{kind}-{dataset}", description=f"{dataset} read from local files",
        dataset={"path": f"local/{dataset}", "revision": revision}, type=kind, category="t2t",
        modalities=["text"], eval_splits=[split], eval_langs=["eng-Latn"], main_score=main_score,
        prompt={"query": instruction},
    )


class LocalRetrieval(AbsTaskRetrieval):
    k_values = (1, 3, 5, 10, 20, 100, 1000)

    def __init__(self, data: RetrievalData, split: str):
        super().__init__()
        self.local_data, self.split = data, split

    def load_data(self, num_proc=None, *, timer=None, **kwargs) -> None:
        data = self.local_data
        corpus = Dataset.from_dict({"id": data.corpus_ids, "title": data.titles, "text": data.texts})
        queries = Dataset.from_dict({"id": data.query_ids, "text": data.queries})
        self.dataset = {"default": {self.split: {"corpus": corpus, "queries": queries,
                                                 "relevant_docs": data.qrels, "top_ranked": None}}}
        self.data_loaded = True


class LocalSTS(AbsTaskSTS):
    def __init__(self, data: PairData, split: str):
        super().__init__()
        self.local_data, self.split = data, split
        # only used to rescale gold scores, which Spearman and Pearson do not see
        self.min_score, self.max_score = min(data.scores), max(data.scores)
        if self.min_score == self.max_score:
            self.max_score = self.min_score + 1

    def load_data(self, num_proc=None, *, timer=None, **kwargs) -> None:
        data = self.local_data
        self.dataset = {"default": {self.split: Dataset.from_dict(
            {"sentence1": data.first, "sentence2": data.second, "score": data.scores})}}
        self.data_loaded = True


class LocalPairClassification(AbsTaskPairClassification):
    def __init__(self, data: PairData, split: str):
        super().__init__()
        self.local_data, self.split = data, split

    def load_data(self, num_proc=None, *, timer=None, **kwargs) -> None:
        data = self.local_data
        self.dataset = {"default": {self.split: Dataset.from_dict(
            {"sentence1": data.first, "sentence2": data.second, "labels": [int(s) for s in data.scores]})}}
        self.data_loaded = True


def local_task(task: str, data, dataset: str, split: str, instruction: str):
    """A task instance over `data`. The metadata sits on a one-off subclass: mteb drops instance
    metadata when it unloads a task's data after the run."""
    base = {"retrieval": LocalRetrieval, "sts": LocalSTS, "pairs": LocalPairClassification}[task]
    metadata = _metadata(task, dataset, split, data_hash(data), instruction)
    return type(base.__name__, (base,), {"metadata": metadata})(data, split)
