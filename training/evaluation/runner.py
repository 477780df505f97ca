"""Evaluate one model on one local task with mteb, with a result cache and an embedding cache.

Results are cached by (model fingerprint, task, data hash, split, instructions) under
home()/eval-cache/results, so a repeat is instant; embeddings by (fingerprint, side,
instruction, text) under home()/eval-cache/embeddings, so an interrupted or re-instructed run
only encodes what it has not seen, and vectors computed on another machine can be scored here.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from embedder.home import subdir
from training.errors import TrainingError

from .data import TASKS, data_hash, dataset_name, query_instruction, read_task
from .embedding_cache import model_label
from .encoders import BM25, CachedEncoder, PrecomputedEncoder, load_encoder

# the few figures a table shows per task; every other mteb score stays in "scores"
HEADLINE = {
    "retrieval": [("ndcg_at_10", "ndcg_at_10"), ("map_at_100", "map_at_100"),
                  ("recall_at_100", "recall_at_100"), ("mrr_at_10", "mrr_at_10")],
    "sts": [("spearman", "cosine_spearman"), ("pearson", "cosine_pearson")],
    "pairs": [("ap", "cosine_ap"), ("max_ap", "max_ap"), ("f1", "cosine_f1")],
}


@dataclass
class EvalRequest:
    model: str
    task: str
    data: str
    split: str = "test"
    instruction: str | None = None  # query side; None: the dataset's (data.query_instruction), '' none
    document_instruction: str | None = None  # None: the model's own document side
    device: str | None = None
    batch_size: int = 32
    embeddings: str | None = None  # a folder of precomputed vectors (no model is loaded)
    use_cache: bool = True
    progress: bool = False
    backbone: str | None = None
    dtype: str | None = None  # the Embedding LLM's ("auto", "fp32", "bf16")
    label: str | None = None  # the name results carry (default: model, with @backbone)


def cache_dir(name: str) -> Path:
    path = subdir("eval-cache") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def infer_task(path: str) -> str:
    p = Path(path)
    if (p / "corpus.jsonl").is_file():
        return "retrieval"
    if (p / "sim.txt").is_file() or any(p.glob("*/sim.txt")) or p.name.startswith("pairs"):
        return "pairs"
    return "sts"


def _result_key(fingerprint: str, request: EvalRequest, dhash: str, instruction: str) -> str:
    blob = json.dumps([fingerprint, request.task, dhash, request.split, instruction, request.document_instruction])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def load_model(request: EvalRequest):
    """Encoder, BM25 searcher, or precomputed vectors, each wrapped for the mteb run."""
    if request.embeddings:
        return PrecomputedEncoder(request.embeddings, request.model, request.backbone)
    if request.model == BM25 and request.task != "retrieval":
        raise TrainingError("bm25 ranks documents for a query: it runs on the retrieval task only")
    # the cache shows the progress bar: the encoder is called slice by slice
    model = load_encoder(request.model, request.device, request.batch_size, False, request.backbone, request.dtype)
    if request.model == BM25:
        return model
    return CachedEncoder(model, cache_dir("embeddings"), model.device, request.progress)


def evaluate(request: EvalRequest, model=None) -> dict:
    """One result record: the model, dataset, split, main metric and headline scores, plus mteb's full scores."""
    if request.task not in TASKS:
        raise TrainingError(f"unknown task '{request.task}'; one of: {', '.join(TASKS)}")
    from .tasks import MTEB_TYPES

    data = read_task(request.task, request.data, request.split)
    dataset, dhash = dataset_name(request.data), data_hash(data)
    instruction = query_instruction(request.task, request.data, request.instruction)
    model = model or load_model(request)
    key = _result_key(model.fingerprint, request, dhash, instruction)
    # one checkpoint on several backbones: several rows
    label = request.label or model_label(request.model, request.backbone)
    path = cache_dir("results") / f"{key}.json"
    if request.use_cache and path.is_file():
        try:
            # the name as asked this time: one checkpoint can be reached by several paths
            return {**json.loads(path.read_text()), "model": label, "cached": True}
        except ValueError:
            pass  # a damaged entry is recomputed and rewritten
    started = time.perf_counter()
    scores = _run_mteb(model, request, data, dataset, instruction)
    result = {
        "model": label, "fingerprint": model.fingerprint, "task": request.task, "dataset": dataset,
        "split": request.split, "data_hash": dhash, "instruction": instruction,
        "document_instruction": request.document_instruction,
        "metric": HEADLINE[request.task][0][0], "value": scores[HEADLINE[request.task][0][1]],
        "headline": {name: scores[key_] for name, key_ in HEADLINE[request.task]},
        "mteb_main_score": MTEB_TYPES[request.task][1], "device": _device(model),
        "seconds": round(time.perf_counter() - started, 2), "date": datetime.date.today().isoformat(),
        "scores": {k: v for k, v in scores.items() if isinstance(v, (int, float))},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    return {**result, "cached": False}


def _run_mteb(model, request: EvalRequest, data, dataset: str, instruction: str) -> dict:
    import datasets
    import mteb

    from .mteb_adapter import MtebEncoder, MtebSearch
    from .tasks import local_task

    logging.getLogger("mteb").setLevel(logging.ERROR)  # its per-phase info lines drown the table
    datasets.disable_progress_bars()  # the encoders show the one bar that matters
    task = local_task(request.task, data, dataset, request.split, instruction)
    if hasattr(model, "search"):
        wrapped = MtebSearch(model)
    else:
        wrapped = MtebEncoder(model, instruction, request.document_instruction)
    # cache=None: our own result cache is keyed by fingerprint and data hash, mteb's by hub names
    result = mteb.evaluate(wrapped, task, cache=None, co2_tracker=False, overwrite_strategy="always",
                           show_progress_bar=False,
                           encode_kwargs={"batch_size": request.batch_size, "show_progress_bar": False})
    if result.exceptions:
        raise TrainingError(f"mteb failed on {dataset}: {result.exceptions[0].exception}")
    return result.task_results[0].scores[request.split][0]


def _device(model) -> str:
    """Where the vectors were computed ('cpu', 'cuda', or what precomputed stores recorded)."""
    return str(getattr(model, "device", None) or "cpu")
