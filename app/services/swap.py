"""One-click backbone swap: align, re-index, evaluate both, compare.

1. A model for the new Embedding LLM (training.adapt): a raw backbone just names the new one; a
   checkpoint that already holds an alignment for it loads with that backbone; otherwise only a new
   alignment trains (the Prompting LLM stays frozen).
2. The collection is indexed again with it (the indexer re-uses the stored chunks).
3. Both models are scored on the evaluation set the user picked: the collection's own labelled
   queries (searched through the indexer) or a BEIR folder, plus search latency and index size.
4. The new model becomes active (unless only_if_better and it scores lower); the previous one is
   remembered for "switch back".
"""
from __future__ import annotations

import time
from pathlib import Path

from .evaluation import METRICS, evaluate_on_beir, evaluate_on_collection, read_labelled_queries
from .indexing import reindex
from .progress import Reporter
from .search import indexed_instructions, search
from .session import Session
from .training import adapt


def run_swap(reporter: Reporter, session: Session, target: str, collection: str, eval_source: str,
             beir_folder: str = "", data: list[str] | None = None, steps: int = 100,
             queries_path: str | None = None, only_if_better: bool = False) -> dict:
    old = session.model_choice
    reporter.progress(0, 1, f"loading {old.label}")
    old_model = session.model(old)
    store = session.store
    instructions = indexed_instructions(store, collection, old_model.fingerprint) if collection else []
    if not instructions:
        raise ValueError(f"collection '{collection}' has no index for the active model yet; index it first")
    instruction = instructions[0]
    queries = None
    if eval_source == "labelled":
        queries = read_labelled_queries(Path(queries_path or ""))
    elif not beir_folder or not (Path(beir_folder) / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"{beir_folder or '(empty)'} is not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")

    new, how = adapt(reporter, old_model, old, target, data or [], steps)
    reporter.log(how)
    reporter.result(old=old.as_dict(), new=new.as_dict(), how=how)
    new_model = session.model(new)

    reporter.progress(0.4, 1, f"indexing '{collection}' with {new.label}")
    total = max(1, store.stats(collection)[0]["chunks"])
    started = time.perf_counter()
    chunks = reindex(store, collection, new_model, instruction, new.label, reporter, on_chunks=lambda n: reporter.progress(
        0.4 + 0.4 * min(1.0, n / total), 1, f"re-indexing '{collection}': {n}/{total} chunks"))
    reporter.log(f"re-indexed {chunks} chunks of '{collection}' in {time.perf_counter() - started:.1f} s")

    rows = []
    for label, choice, model in (("before", old, old_model), ("after", new, new_model)):
        reporter.progress(0.8 if label == "before" else 0.9, 1, f"evaluating {choice.label}")
        if queries is not None:
            scores = evaluate_on_collection(store, collection, model, instruction, queries, reporter)
        else:
            scores = evaluate_on_beir(beir_folder, model, choice.label)
            started = time.perf_counter()
            search(store, collection, "test", model, instruction, k=10, mode="semantic")
            scores["latency_ms"] = 1000 * (time.perf_counter() - started)
        index = next((ix for ix in store.stats(collection)[0]["indexes"]
                      if ix["fingerprint"] == model.fingerprint and ix["instruction"] == instruction), {})
        rows.append({"": label, "model": choice.label, "backbone": model.embedding.name,
                     **{m: round(scores[m], 4) for m in METRICS}, "latency (ms)": round(scores["latency_ms"], 1),
                     "index size (KB)": round(index.get("file_bytes", 0) / 1024, 1), "vectors": index.get("vectors", 0)})
        reporter.log(f"{label}: {rows[-1]}")
    evaluated_on = (f"{len(queries)} labelled queries of '{collection}'" if queries is not None
                    else f"BEIR folder {beir_folder}")
    before, after = rows[0]["nDCG@10"], rows[1]["nDCG@10"]
    verdict = (f"{new.label} scores {'higher' if after > before else 'lower' if after < before else 'the same'} "
               f"(nDCG@10 {after:.3f} vs {before:.3f})")
    if only_if_better and after < before:
        summary = f"kept {old.label}: {verdict}; evaluated on {evaluated_on}"
    else:
        session.set_active(new, previous=old)
        summary = f"now searching with {new.label} ({new_model.embedding.name}): {verdict}; evaluated on {evaluated_on}"
    return {"table": rows, "collection": collection, "instruction": instruction, "evaluated_on": evaluated_on,
            "old": old.as_dict(), "new": new.as_dict(), "activated": session.model_choice == new, "summary": summary}
