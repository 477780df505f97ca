"""nDCG@10 / recall@10 / MRR@10 on the demo collection's labelled queries, per model, plus BM25.

    .venv/bin/python scripts/eval_demo_queries.py --model default --model raw:smollm2-135m:mean \
        [--home /tmp/demo-eval] [--json docs/results/demo-queries.json]

Each model indexes the demo collection (the standard library's docs, `app/demo.py`) in a store under
--home through the indexer, as `make demo` does, with the demo's instruction, then answers every
labelled query through the indexer's search in each --search-mode (semantic, keyword, hybrid: one hit per
document, 40 deep), scored as the UI's backbone comparison scores them (`app/ui/swap.py`). BM25 (bm25s)
ranks the same files whole.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[],
                        help="a --model value, or all-minilm-l6-v2 (repeatable; 'default')")
    parser.add_argument("--home", default="/tmp/promptembedder-demo-eval", help="PROMPTEMBEDDER_HOME for the run")
    parser.add_argument("--search-mode", action="append", default=[], choices=["semantic", "keyword", "hybrid"],
                        help="search modes to score (repeatable; default: all three)")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    from embedder.home import backbone_cache

    os.environ.setdefault("PROMPTEMBEDDER_CACHE", str(backbone_cache()))  # the converted backbones stay where they are
    os.environ["PROMPTEMBEDDER_HOME"] = args.home

    from app.services.models import model_or_default
    from app.demo import COLLECTION, INSTRUCTION, build_demo_docs, labelled_queries_path
    from app.services.evaluation import METRICS, documents_in_order, read_labelled_queries
    from embedder import PromptEmbedder
    from indexer.collection import Store
    from training.evaluation.encoders import MINILM, SentenceTransformerEncoder, minilm_path
    from training.evaluation.metrics import ranking_metrics

    paths = build_demo_docs(log=lambda m: print(m, file=sys.stderr))
    queries = read_labelled_queries(labelled_queries_path())
    rows = [_bm25_row(paths, queries, METRICS, ranking_metrics)]
    for name in args.model:
        target, _ = model_or_default(name)
        model = (SentenceTransformerEncoder(minilm_path(), MINILM) if name == MINILM
                 else PromptEmbedder.from_pretrained(target))
        started = time.perf_counter()
        with Store() as store:
            with store.open(COLLECTION, model, instruction=INSTRUCTION, create=True, progress=True) as collection:
                collection.index([str(paths[0].parent)])
            index_s = time.perf_counter() - started
            with store.open(COLLECTION, model, instruction=INSTRUCTION, writable=False) as collection:
                for mode in args.search_mode or ["semantic", "keyword", "hybrid"]:
                    totals = dict.fromkeys(METRICS, 0.0)
                    for row in queries:
                        hits = collection.search(row["query"], k=40, mode=mode)
                        for metric, value in ranking_metrics(documents_in_order(hits), set(row["relevant"])).items():
                            totals[metric] += value
                    rows.append({"model": name, "mode": mode, "loaded": target or "assets/default-model",
                                 "dtype": model.dtype_name, **{m: round(v / len(queries), 4) for m, v in totals.items()},
                                 "index_s": round(index_s, 1)})
                    print(json.dumps(rows[-1]), file=sys.stderr)
    report = {"date": time.strftime("%Y-%m-%d"), "queries": len(queries), "documents": len(paths),
              "instruction": INSTRUCTION, "command": "python scripts/eval_demo_queries.py " + " ".join(sys.argv[1:]),
              "rows": rows}
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


def _bm25_row(paths, queries, metrics, ranking_metrics) -> dict:
    import bm25s

    texts = [p.read_text(encoding="utf-8") for p in paths]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, show_progress=False), show_progress=False)
    hits, _ = retriever.retrieve(bm25s.tokenize([q["query"] for q in queries], show_progress=False),
                                 k=min(10, len(texts)), show_progress=False)
    totals = dict.fromkeys(metrics, 0.0)
    for row, ranked in zip(queries, hits):
        for metric, value in ranking_metrics([str(paths[i]) for i in ranked], set(row["relevant"])).items():
            totals[metric] += value
    return {"model": "bm25", **{m: round(v / len(queries), 4) for m, v in totals.items()}}


if __name__ == "__main__":
    raise SystemExit(main())
