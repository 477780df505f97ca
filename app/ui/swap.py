"""One-click backbone swap: align, re-index, evaluate both, compare.

1. A model for the new Embedding LLM: a raw backbone just names the new one; a checkpoint that
   already holds an alignment for it loads with --backbone; otherwise `training.align` attaches the
   backbone and the Trainer trains only the new alignment (the Prompting LLM stays frozen).
2. The active collection is indexed again with it (the indexer re-uses the stored chunks).
3. Both models are scored on the evaluation set the user picked: the collection's own labelled
   queries (searched through the indexer: nDCG@10, recall@10, MRR@10 by document) or a BEIR folder
   (issue 4's mteb evaluation), plus search latency and index size.
4. The new model becomes active; the previous one is remembered for "switch back".
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from .indexing import CountingModel
from .jobs import JobContext
from .state import AppState, ModelChoice
from .training_job import models_dir, run_name

METRICS = ("nDCG@10", "recall@10", "MRR@10")


def read_labelled_queries(path: Path) -> list[dict]:
    """Lines of {"query": ..., "relevant": [document path or key, ...]}."""
    from training.evaluation.data import read_jsonl

    rows = []
    for number, row in enumerate(read_jsonl(path, ("query", "relevant")), 1):
        if not isinstance(row["query"], str) or not row["relevant"]:
            raise ValueError(f'{path}: record {number}: expected {{"query": "...", "relevant": ["path", ...]}}')
        relevant = row["relevant"] if isinstance(row["relevant"], list) else [row["relevant"]]
        rows.append({"query": row["query"], "relevant": [str(r) for r in relevant]})
    return rows


def ranking_metrics(ranked: list[str], relevant: set[str], k: int = 10) -> dict:
    """Binary-relevance nDCG@k, recall@k and MRR@k of a ranked list of document ids."""
    top = ranked[:k]
    gains = [1.0 if doc in relevant else 0.0 for doc in top]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    first = next((i for i, g in enumerate(gains) if g), None)
    return {"nDCG@10": dcg / ideal if ideal else 0.0,
            "recall@10": sum(gains) / len(relevant) if relevant else 0.0,
            "MRR@10": 1.0 / (first + 1) if first is not None else 0.0}


def documents_in_order(hits) -> list[str]:
    seen = []
    for hit in hits:
        if hit.path not in seen:
            seen.append(hit.path)
    return seen


def evaluate_on_collection(state: AppState, collection: str, model, instruction: str | None,
                           queries: list[dict], ctx: JobContext | None = None) -> dict:
    """Mean metrics over labelled queries, searched through the indexer, and the mean search latency."""
    totals = dict.fromkeys(METRICS, 0.0)
    latencies = []
    for number, row in enumerate(queries):
        if ctx is not None:
            ctx.check()
        started = time.perf_counter()
        hits = state.search(collection, row["query"], k=40, instruction=instruction, model=model, mode="semantic")
        latencies.append(time.perf_counter() - started)
        for name, value in ranking_metrics(documents_in_order(hits), set(row["relevant"])).items():
            totals[name] += value
    scores = {name: value / len(queries) for name, value in totals.items()}
    scores["latency_ms"] = 1000 * sum(latencies) / len(latencies)
    return scores


def evaluate_on_beir(folder: str, model, label: str, split: str = "test") -> dict:
    """nDCG@10, recall@10, MRR@10 with issue 4's mteb evaluation on a BEIR folder."""
    from training.evaluation.encoders import CachedEncoder, EmbedderEncoder
    from training.evaluation.runner import EvalRequest, cache_dir, evaluate

    encoder = CachedEncoder(EmbedderEncoder(model, label), cache_dir("embeddings"), model.device.type)
    result = evaluate(EvalRequest(model=label, task="retrieval", data=folder, split=split), model=encoder)
    scores = result["scores"]
    return {"nDCG@10": scores["ndcg_at_10"], "recall@10": scores["recall_at_10"], "MRR@10": scores["mrr_at_10"]}


def adapt(ctx: JobContext, state: AppState, old: ModelChoice, target: str, data: list[str], steps: int,
          batch_size: int = 16) -> tuple[ModelChoice, str]:
    """(the model choice running on the target backbone, what was done)."""
    from embedder import PromptEmbedder
    from embedder.checkpoint import resolve_model_name
    from training.errors import TrainingError

    old_model = state.model(old)
    if old_model.embedding.name == target:
        raise ValueError(f"the active model already runs on {target}; pick another backbone")
    if old_model.prompter is None:
        if old.name and old.name.startswith("raw:"):
            pooling = old.name.split(":")[2] if old.name.count(":") >= 2 else "mean"
            return ModelChoice(f"raw:{target}:{pooling}"), "raw backbone: nothing to align, the new backbone is used as is"
        raise TrainingError(f"{old.label} is a LoRA baseline: its adapter belongs to its backbone and cannot move")
    target_dir = resolve_model_name(old.name)
    if isinstance(target_dir, Path) and target in old_model.config.aligned_backbones:
        return ModelChoice(old.name, target), f"the checkpoint already has an alignment for {target}: training skipped"
    if not data:
        raise ValueError("alignment training needs data (KIND:PATH lines, e.g. jsonl:pairs.jsonl)")
    from training.align import attach_backbone
    from training.data import read_sources
    from training.trainer import Trainer, TrainConfig

    records, _ = read_sources(data, on_error="skip")
    # a batch never holds the same text twice (false negatives): small data sets need smaller batches
    batch_size = max(2, min(batch_size, len({r.positive for r in records})))
    ctx.log(f"aligning {old.label} to {target}: {len(records)} records, {steps} steps of batch {batch_size} "
            "(only the alignment trains)")
    model = PromptEmbedder.from_pretrained(old.name, backbone=old.backbone)  # a copy: the active one keeps serving
    attach_backbone(model, target)
    output = models_dir() / run_name(f"{old.label}-{target}")
    config = TrainConfig(output_dir=str(output), mode="alignment", max_steps=steps, batch_size=batch_size,
                         warmup_steps=max(1, min(20, steps // 10)), save_every=0, query_length=64,
                         document_length=128, progress=False)

    def on_step(step: int, entry: dict) -> None:
        ctx.point(stage="align", step=step, loss=entry["loss"])
        ctx.progress(0.4 * step / steps, 1, f"aligning to {target}: step {step}/{steps}, loss {entry['loss']:.4f}")
        if step % max(1, steps // 10) == 0 or step == steps:
            ctx.log(f"align step {step}/{steps} loss {entry['loss']:.4f}")
        ctx.check()

    Trainer(model, records, config, on_step=on_step).train()
    return ModelChoice(str(output)), f"trained a new alignment for {target} ({steps} steps) -> {output}"


def run_swap(ctx: JobContext, state: AppState, target: str, collection: str, eval_source: str,
             beir_folder: str = "", data: list[str] | None = None, steps: int = 100,
             queries_path: str | None = None, only_if_better: bool = False) -> dict:
    """Align (if needed), re-index, evaluate both; the new model becomes active unless only_if_better and
    its nDCG@10 is lower."""
    old = state.model_choice
    ctx.progress(0, 1, f"loading {old.label}")
    old_model = state.model(old)
    instructions = state.instructions(collection, old_model)
    if not instructions:
        raise ValueError(f"collection '{collection}' has no index for the active model yet; index it first")
    instruction = instructions[0]
    queries = None
    if eval_source == "labelled":
        queries = read_labelled_queries(Path(queries_path or ""))
    elif not beir_folder or not (Path(beir_folder) / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"{beir_folder or '(empty)'} is not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")

    new, how = adapt(ctx, state, old, target, data or [], steps)
    ctx.log(how)
    ctx.result(old=old.as_dict(), new=new.as_dict(), how=how)
    new_model = state.model(new)

    ctx.progress(0.4, 1, f"indexing '{collection}' with {new.label}")
    total = max(1, state.store.stats(collection)[0]["chunks"])
    counter = CountingModel(new_model, ctx, on_chunks=lambda n: ctx.progress(
        0.4 + 0.4 * min(1.0, n / total), 1, f"re-indexing '{collection}': {n}/{total} chunks"))
    started = time.perf_counter()
    state.store.open(collection, counter, instruction=instruction, create=True, progress=False,
                     model_name=new.label).close()
    ctx.log(f"re-indexed {counter.chunks} chunks of '{collection}' in {time.perf_counter() - started:.1f} s")

    rows = []
    for label, choice, model in (("before", old, old_model), ("after", new, new_model)):
        ctx.progress(0.8 if label == "before" else 0.9, 1, f"evaluating {choice.label}")
        if queries is not None:
            scores = evaluate_on_collection(state, collection, model, instruction, queries, ctx)
        else:
            scores = evaluate_on_beir(beir_folder, model, choice.label)
            sample = [{"query": "test"}]
            started = time.perf_counter()
            state.search(collection, sample[0]["query"], k=10, instruction=instruction, model=model, mode="semantic")
            scores["latency_ms"] = 1000 * (time.perf_counter() - started)
        index = next((ix for ix in state.store.stats(collection)[0]["indexes"]
                      if ix["fingerprint"] == model.fingerprint and ix["instruction"] == instruction), {})
        rows.append({"": label, "model": choice.label, "backbone": model.embedding.name,
                     **{m: round(scores[m], 4) for m in METRICS}, "latency (ms)": round(scores["latency_ms"], 1),
                     "index size (KB)": round(index.get("file_bytes", 0) / 1024, 1), "vectors": index.get("vectors", 0)})
        ctx.log(f"{label}: {rows[-1]}")
    evaluated_on = (f"{len(queries)} labelled queries of '{collection}'" if queries is not None
                    else f"BEIR folder {beir_folder}")
    before, after = rows[0]["nDCG@10"], rows[1]["nDCG@10"]
    verdict = (f"{new.label} scores {'higher' if after > before else 'lower' if after < before else 'the same'} "
               f"(nDCG@10 {after:.3f} vs {before:.3f})")
    if only_if_better and after < before:
        summary = f"kept {old.label}: {verdict}; evaluated on {evaluated_on}"
    else:
        state.set_active(new, previous=old)
        summary = f"now searching with {new.label} ({model.embedding.name}): {verdict}; evaluated on {evaluated_on}"
    return {"table": rows, "collection": collection, "instruction": instruction, "evaluated_on": evaluated_on,
            "old": old.as_dict(), "new": new.as_dict(), "activated": state.model_choice == new, "summary": summary}
