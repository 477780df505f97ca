"""Encoding throughput: tokens/s of the embedder's forward pass at a fixed batch shape, per dtype.

Texts are synthetic token ids (tokenisation excluded), so every model sees the same shape:
`python -m embedder.bench --models raw:smollm2-135m --dtypes fp32 bf16 --batch-size 32 --length 128`.
Runs every (model, dtype) back to back in one process and prints a table (and JSON with --json). For
each dtype other than fp32 it also reports parity: the minimum and mean cosine, per text, between its
vectors and fp32's for the same tokens. --compare-lora-merge also times each LoRA baseline with its
adapter unmerged (PEFT's rank-r detour at every projection) beside merged (from_pretrained's default),
with the merged row's speedup and parity against the unmerged one.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from .dtypes import DTYPE_CHOICES
from .hardware import device_name
from .model import PromptEmbedder, cpu_has_native_bf16


def bench_encode(model_name: str, batch_size: int = 32, length: int = 128, batches: int = 3,
                 device: str | None = None, dtype: str = "auto", merge_lora: bool = True) -> tuple[dict, torch.Tensor]:
    """(the figures, the normalised vectors of the first batch) for one model at one dtype."""
    model = PromptEmbedder.from_pretrained(model_name, device=device, dtype=dtype, merge_lora=merge_lora).eval()
    vocab = model.tokenizer.vocab_size
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(100, vocab - 1, (batch_size, length), generator=generator).tolist()
    instruction = model.config.document_instruction
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        vectors = F.normalize(model(tokens, instruction).float(), dim=-1).cpu()  # warm-up, and the parity sample
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
    row = {
        "model": model_name,
        "device": device_name(model.device),
        "dtype": model.dtype_name,
        "batch_size": batch_size,
        "length": length,
        "soft_tokens": extra,
        "lora": None if model.config.embedding_lora is None else "merged" if model.lora_merged else "unmerged",
        "median_batch_s": round(step, 4),
        "tokens_per_s": round(batch_size * length / step, 1),
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    return row, vectors


def bench_dtypes(models: list[str], dtypes: list[str], batch_size: int = 32, length: int = 128, batches: int = 3,
                 device: str | None = None, compare_lora_merge: bool = False) -> list[dict]:
    """Every model at every dtype; rows after a model's fp32 row carry speedup and parity against it. With
    compare_lora_merge, a LoRA baseline's merged row comes after its unmerged one and is compared with it."""
    rows = []
    for name in models:
        reference = None
        for dtype in dtypes:
            unmerged = None
            if compare_lora_merge:
                unmerged = bench_encode(name, batch_size, length, batches, device, dtype, merge_lora=False)
                if unmerged[0]["lora"] is None:  # no adapter: the plain row below is the same model
                    unmerged = None
                else:
                    rows.append(unmerged[0])
            row, vectors = bench_encode(name, batch_size, length, batches, device, dtype)
            if row["dtype"] == "fp32":
                reference = (row, vectors)
            elif reference is not None:
                row.update(_against(row, vectors, reference, "fp32"))
            if unmerged is not None:
                row.update(_against(row, vectors, unmerged, "unmerged"))
            rows.append(row)
    return rows


def _against(row: dict, vectors: torch.Tensor, reference: tuple[dict, torch.Tensor], name: str) -> dict:
    """Speedup over a reference row and the per-text cosine between their vectors for the same tokens."""
    cosine = (vectors * reference[1]).sum(-1)
    suffix = "" if name == "fp32" else f"_vs_{name}"
    return {f"speedup_vs_{name}": round(row["tokens_per_s"] / reference[0]["tokens_per_s"], 3),
            f"parity_min_cosine{suffix}": round(cosine.min().item(), 6),
            f"parity_mean_cosine{suffix}": round(cosine.mean().item(), 6)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["raw:smollm2-135m"])
    parser.add_argument("--dtypes", nargs="+", choices=DTYPE_CHOICES, default=["fp32", "bf16"],
                        help="dtypes of the frozen Embedding LLM, each timed (default: fp32 bf16)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=128, help="text tokens per row")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per model (after one warm-up)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--compare-lora-merge", action="store_true",
                        help="also time each LoRA baseline with its adapter unmerged, beside merged (the default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench_dtypes(args.models, args.dtypes, args.batch_size, args.length, args.batches, args.device,
                        args.compare_lora_merge)
    print(f"{'model':26} {'device':16} {'dtype':5} {'lora':8} {'batch x len':>11} {'s/batch':>8} {'tokens/s':>9} "
          f"{'vs fp32':>7} {'min cos':>8} {'vs unmerged':>11} {'min cos':>8}")
    for r in rows:
        speed = f"{r['speedup_vs_fp32']:.2f}x" if "speedup_vs_fp32" in r else "-"
        parity = f"{r['parity_min_cosine']:.5f}" if "parity_min_cosine" in r else "-"
        merge_speed = f"{r['speedup_vs_unmerged']:.2f}x" if "speedup_vs_unmerged" in r else "-"
        merge_parity = f"{r['parity_min_cosine_vs_unmerged']:.6f}" if "speedup_vs_unmerged" in r else "-"
        print(f"{r['model'][-26:]:26} {r['device'][:16]:16} {r['dtype']:5} {r['lora'] or '-':8} "
              f"{r['batch_size']:>5} x {r['length']:<4}{r['median_batch_s']:>8.3f} {r['tokens_per_s']:>9.0f} "
              f"{speed:>7} {parity:>8} {merge_speed:>11} {merge_parity:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"host": platform.node(), "cpu": platform.processor() or platform.machine(),
                       "cpu_native_bf16": cpu_has_native_bf16(), "torch": torch.__version__,
                       "date": time.strftime("%Y-%m-%d"), "results": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
