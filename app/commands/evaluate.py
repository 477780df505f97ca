"""`promptembedder eval`: MTEB-style scores on local data, for one model or several side by side."""
from __future__ import annotations

import argparse
import json
import sys

from embedder.dtypes import DTYPE_CHOICES, DTYPE_HELP
from indexer.fusion import DEFAULT_KEYWORD_WEIGHT, MODES, check_weight

EPILOG = """\
models: a checkpoint directory, 'tiny', a backbone name (untrained PromptEmbedder), 'raw:BACKBONE[:mean|:last]'
(the raw Embedding LLM with the instruction as text), 'bm25' (retrieval only), or 'all-minilm-l6-v2'.

examples:
  promptembedder eval --model bm25 --data ../shared/data/scifact
  promptembedder eval --compare bm25 all-minilm-l6-v2 raw:smollm2-135m:mean --data ../shared/data/scifact
  promptembedder eval --model raw:smollm2-135m:mean --task sts --data ../shared/data/stsbenchmark --json
  promptembedder eval --model raw:qwen2.5-0.5b:mean --data ../shared/data/scifact --embeddings DIR
    (DIR from `python -m training.evaluation.embed` run elsewhere, e.g. on a GPU)
"""


def register(commands) -> None:
    p = commands.add_parser(
        "eval", help="score models on a retrieval, STS or pair-classification dataset (mteb, local files)",
        description="Score embedders with mteb's evaluators on data read from disk: retrieval from a BEIR "
                    "folder (nDCG@10, MAP@100, recall@100, MRR@10), STS from a scored pair file (Spearman "
                    "of cosine), pair classification from labelled pairs (average precision). Results are "
                    "cached by (model fingerprint, task, data hash), so a repeat is instant.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="the model to score (see below)")
    which.add_argument("--compare", nargs="+", metavar="MODEL", help="score several models, print them side by side")
    p.add_argument("--data", required=True,
                   help="a BEIR folder, an STS file or folder (sts-test.csv), or labelled pairs")
    p.add_argument("--task", choices=["retrieval", "sts", "pairs"], default=None,
                   help="default: retrieval for a folder with corpus.jsonl, pairs for sim.txt folders, else sts")
    p.add_argument("--split", default="test", help="which split (qrels/SPLIT.tsv, sts-SPLIT.csv...; default test)")
    p.add_argument("--instruction", default=None,
                   help="query-side instruction (default: mteb's for the dataset, e.g. SciFact's claim "
                        "instruction; '' for none: raw backbones then read the plain text)")
    p.add_argument("--document-instruction", default=None,
                   help="document-side instruction (default: the model's own; raw backbones read documents "
                        "as plain text)")
    p.add_argument("--backbone", default=None, help="for a checkpoint aligned to several Embedding LLMs: which one")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help=DTYPE_HELP)
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    p.add_argument("--embeddings", default=None, metavar="DIR",
                   help="score vectors precomputed by `python -m training.evaluation.embed` (no model is loaded)")
    p.add_argument("--no-cache", action="store_true",
                   help="rescore even when a cached result exists (cached embeddings are still reused)")
    p.add_argument("--mode", choices=MODES, default="semantic",
                   help="retrieval: rank by the model's embeddings (semantic, the default), by the search's keyword "
                        "index (keyword: SQLite FTS5 BM25, no model), or by both fused as `search` does (hybrid)")
    p.add_argument("--keyword-weight", type=float, default=DEFAULT_KEYWORD_WEIGHT,
                   help=f"hybrid: the keyword ranking's share of the fusion (default {DEFAULT_KEYWORD_WEIGHT})")
    p.add_argument("--label", default=None, metavar="NAME",
                   help="with --model: the name its results are shown and recorded under (default: --model as "
                        "given, with @BACKBONE for --backbone), e.g. a short name for a checkpoint's path")
    p.add_argument("--json", action="store_true", help="print the result records as JSON")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="also merge the results into FILE (e.g. docs/results/eval-baselines.json)")
    p.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    from training.evaluation.runner import EvalRequest, evaluate as run, infer_task

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    models = args.compare or [args.model]
    task = args.task or infer_task(args.data)
    check_weight(args.keyword_weight)
    if args.label is not None and args.compare:
        raise ValueError("--label names the one --model; with --compare each model is shown by its own name")
    if args.mode != "semantic" and task != "retrieval":
        raise ValueError(f"--mode {args.mode} ranks documents: it needs a retrieval dataset, not {task}")
    progress = sys.stderr.isatty()
    results = []
    for name in models:
        if progress and len(models) > 1:
            print(f"[{len(results) + 1}/{len(models)}] {name}", file=sys.stderr)
        request = EvalRequest(model=name, task=task, data=args.data, split=args.split, instruction=args.instruction,
                              document_instruction=args.document_instruction, device=args.device,
                              batch_size=args.batch_size, embeddings=args.embeddings, use_cache=not args.no_cache,
                              progress=progress, backbone=args.backbone, dtype=args.dtype, label=args.label)
        results.append(_evaluate_in_mode(request, args.mode, args.keyword_weight) if args.mode != "semantic"
                       else run(request))
    if args.record:
        from training.evaluation.report import record

        record(args.record, results)
    if args.json:
        print(json.dumps(results[0] if args.model else results, indent=2))
    else:
        from training.evaluation.report import table

        print(table(results))
    return 0


def _evaluate_in_mode(request, mode: str, keyword_weight: float) -> dict:
    """Score the search's keyword ranking, or its fusion with a model's, as `search --mode` ranks."""
    from indexer.keyword import MemoryKeywordIndex
    from training.evaluation.data import query_instruction
    from training.evaluation.runner import evaluate as run, load_model

    if mode == "keyword":
        searcher = MemoryKeywordIndex()
    else:
        if request.model == "bm25":
            raise ValueError("hybrid fuses a model's embeddings with the keyword index: give an embedding model")
        searcher = HybridSearch(load_model(request), query_instruction(request.task, request.data, request.instruction),
                                request.document_instruction, keyword_weight)
    result = run(request, model=searcher)
    label = (request.label or "keyword") if mode == "keyword" else f"{result['model']} hybrid"
    return {**result, "model": label, "mode": mode}


class HybridSearch:
    """The fusion `search` does (reciprocal ranks of cosine and keyword rankings) over an evaluation corpus."""

    name = "hybrid"

    def __init__(self, encoder, instruction: str, document_instruction: str | None, keyword_weight: float):
        from indexer.keyword import MemoryKeywordIndex

        self.encoder, self.instruction, self.document_instruction = encoder, instruction, document_instruction
        self.keyword, self.keyword_weight = MemoryKeywordIndex(), keyword_weight
        self.fingerprint = f"{encoder.fingerprint}-hybrid-{keyword_weight}-{self.keyword.fingerprint}"
        self.device = getattr(encoder, "device", None)

    def index(self, ids: list[str], documents: list[str]) -> None:
        import numpy as np

        self.keyword.index(ids, documents)
        vectors = np.asarray(self.encoder.encode_document(documents, self.document_instruction), dtype=np.float32)
        self.vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.ids = list(ids)

    def search(self, queries: list[str], top_k: int = 100) -> list[dict[str, float]]:
        import numpy as np

        from indexer.fusion import reciprocal_rank_fusion

        vectors = np.asarray(self.encoder.encode(queries, self.instruction), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        depth = min(len(self.ids), max(top_k, 100))  # each side ranks as deep as `search` does for the page
        out = []
        for vector, lexical in zip(vectors, self.keyword.search(queries, depth)):
            cosine = self.vectors @ vector
            best = np.argsort(-cosine)[:depth]
            fused = reciprocal_rank_fusion([self.ids[i] for i in best], list(lexical), self.keyword_weight)
            out.append(dict(fused[:top_k]))
        return out
