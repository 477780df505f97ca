"""Score one checkpoint's STS-B dev Spearman at several relaxation temperatures (no retraining).

    python scripts/score_at_temperatures.py CHECKPOINT ../shared/data/stsbenchmark/sts-dev.csv 1.0 0.3

Written to measure what saving checkpoints at tau 1.0 after training to 0.3 had cost (docs/benchmarks.md).
"""
from __future__ import annotations

import json
import sys
import time

import torch

from embedder import PromptEmbedder
from training.dev_score import build_dev_set, score_dev_set


def main(checkpoint: str, sts_dev: str, *taus: str) -> None:
    torch.set_num_threads(1)
    model = PromptEmbedder.from_pretrained(checkpoint, device="cpu")
    dev = build_dev_set([], sts_path=sts_dev)
    for tau in map(float, taus):
        model.set_gumbel_tau(tau)  # also drops prompts cached at the previous temperature
        start = time.time()
        scores = score_dev_set(model, dev, batch_size=32)
        print(json.dumps({"tau": tau, **scores, "seconds": round(time.time() - start)}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
