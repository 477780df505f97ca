"""Compute an evaluation's embeddings only, where mteb is not installed (the GPU machine).

    python -m training.evaluation.embed --model raw:qwen2.5-0.5b:mean --task retrieval \\
        --data ../shared/data/scifact --out eval-embeddings/

writes the same stores the scorer reads (see embedding_cache.py): bring OUT back and run
`promptembedder eval --model raw:qwen2.5-0.5b:mean --data ../shared/data/scifact --embeddings OUT`,
or copy OUT/* into PROMPTEMBEDDER_HOME/eval-cache/embeddings/ and evaluate as usual.
Imports the embedder, numpy and json only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from embedder.backbones import BackboneError
from embedder.dtypes import DTYPE_CHOICES, DTYPE_HELP
from training.errors import TrainingError
from training.formats import RetrievalData

from .data import query_instruction, read_task
from .embedding_cache import SIDE_NAMES, EmbeddingStore, fill, model_label
from .encoders import BASELINE_NAMES, load_encoder


def texts_to_embed(task: str, data) -> list[tuple[str, list[str]]]:
    """(side, texts) exactly as the mteb adapter will ask for them."""
    if isinstance(data, RetrievalData):
        return [("query", data.queries), ("document", data.documents)]
    return [("query", data.first + data.second)]  # symmetric tasks: both columns on the query side


def embed(model_name: str, task: str, data_path: str, out: str, split: str = "test", instruction: str | None = None,
          document_instruction: str | None = None, device: str | None = None, batch_size: int = 32,
          progress: bool = False, dtype: str = "float32", backbone: str | None = None,
          label: str | None = None, model_dtype: str | None = None) -> dict:
    if model_name in BASELINE_NAMES:
        raise TrainingError(f"'{model_name}' is cheap on a CPU: score it with `promptembedder eval` directly")
    data = read_task(task, data_path, split)
    instruction = query_instruction(task, data_path, instruction)
    encoder = load_encoder(model_name, device, batch_size, backbone=backbone, dtype=model_dtype)
    summary = {"model": model_name, "fingerprint": encoder.fingerprint, "device": encoder.device,
               "instruction": instruction, "document_instruction": document_instruction, "sides": {}}
    for side, texts in texts_to_embed(task, data):
        side_instruction = instruction if side == "query" else document_instruction
        store = EmbeddingStore(out, model_label(label or model_name, backbone), encoder.fingerprint, side,
                               side_instruction, encoder.device, dtype)
        started = time.perf_counter()
        encode = encoder.encode if side == "query" else encoder.encode_document
        encoded = fill(store, texts, encode, side_instruction, progress=progress, desc=SIDE_NAMES[side])
        summary["sides"][side] = {"texts": len(texts), "encoded": encoded, "stored": len(store),
                                  "seconds": round(time.perf_counter() - started, 1)}
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluation.embed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="any name PromptEmbedder.from_pretrained takes, or a checkpoint dir")
    p.add_argument("--task", choices=["retrieval", "sts", "pairs"], required=True)
    p.add_argument("--data", required=True, help="BEIR folder, STS file/folder, or labelled pairs")
    p.add_argument("--split", default="test")
    p.add_argument("--instruction", default=None,
                   help="query-side instruction (default: the dataset's, as in eval; '' for none)")
    p.add_argument("--document-instruction", default=None, help="document-side instruction (default: the model's)")
    p.add_argument("--out", required=True, help="folder for the .npy/.json stores")
    p.add_argument("--backbone", default=None, help="for a checkpoint aligned to several Embedding LLMs: which one")
    p.add_argument("--label", default=None,
                   help="the model name the scorer will be given (default: --model as written here); e.g. a "
                        "checkpoint at /root/run on the GPU machine that will be assets/default-model here")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help=DTYPE_HELP)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--float16", action="store_true", help="store vectors as float16 (half the size to bring back)")
    args = p.parse_args(argv)

    try:
        summary = embed(args.model, args.task, args.data, args.out, args.split, args.instruction,
                        args.document_instruction, args.device, args.batch_size, progress=True,
                        dtype="float16" if args.float16 else "float32", backbone=args.backbone,
                        label=args.label, model_dtype=args.dtype)
    except (TrainingError, BackboneError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
