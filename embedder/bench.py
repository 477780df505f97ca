"""Encoding throughput: tokens/s of the embedder's forward pass at a fixed batch shape.

Texts are synthetic token ids (tokenisation excluded), so every model sees the same shape:
`python -m embedder.bench --models raw:smollm2-135m smollm2-135m --batch-size 32 --length 128`.
Runs the models back to back in one process and prints a table (and JSON with --json).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch

from .model import PromptEmbedder


def bench_encode(model_name: str, batch_size: int = 32, length: int = 128, batches: int = 3,
                 device: str | None = None) -> dict:
    model = PromptEmbedder.from_pretrained(model_name, device=device).eval()
    vocab = model.tokenizer.vocab_size
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(100, vocab - 1, (batch_size, length), generator=generator).tolist()
    instruction = model.config.document_instruction
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        model(tokens, instruction)  # warm-up: kernels, allocator, soft-prompt cache
        for _ in range(batches):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(tokens, instruction)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    extra = 0 if model.config.text_mode else model.config.num_soft_tokens
    return {
        "model": model_name,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "dtype": str(next(model.embedding.lm.parameters()).dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "length": length,
        "soft_tokens": extra,
        "median_batch_s": round(step, 4),
        "tokens_per_s": round(batch_size * length / step, 1),
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["raw:smollm2-135m", "raw:qwen2.5-0.5b"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128, help="text tokens per row")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per model (after one warm-up)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    rows = [bench_encode(m, args.batch_size, args.length, args.batches, args.device) for m in args.models]
    print(f"{'model':28} {'device':24} {'dtype':9} {'batch x len':>11} {'s/batch':>8} {'tokens/s':>10}")
    for r in rows:
        print(f"{r['model']:28} {r['device'][:24]:24} {r['dtype']:9} {r['batch_size']:>5} x {r['length']:<4}"
              f"{r['median_batch_s']:>8.3f} {r['tokens_per_s']:>10.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"host": platform.node(), "torch": torch.__version__, "results": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
