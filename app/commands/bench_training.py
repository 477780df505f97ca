"""`promptembedder bench train`, `bench convergence` and `bench levers`: the training benchmarks' command lines.

Registered by app/commands/bench.py; heavy imports stay inside the handlers (the parser is built at start-up).
On the GPU machine, where only embedder/ and training/ need to import, run it as a module from the source
tree: `python -m app.commands.bench_training train ...` (the same options).
"""
from __future__ import annotations

import argparse
import sys

from embedder.dtypes import DTYPE_CHOICES


def register(benchmarks) -> None:
    _register_train(benchmarks)
    _register_convergence(benchmarks)
    _register_levers(benchmarks)


# ----- bench train ----------------------------------------------------------------------------
def _register_train(suites) -> None:
    p = suites.add_parser(
        "train", help="training step cost: LoRA on E vs PromptEmbedder prefix / suffix",
        description="Trains the LoRA baseline (r16 on every projection of E, instruction as text) and PromptEmbedder "
                    "with prefix and suffix placement (suffix through the cached no-grad text pass) on the same "
                    "synthetic batch, back to back in one process, and reports per configuration the median step "
                    "time, text tokens/s, peak memory (CUDA max allocated; peak RSS on CPU) and trainable parameters. "
                    "Backbones are built from their configuration with random weights (speed and memory do not depend "
                    "on the values), so no weights or tokenizer are needed.",
        epilog="GPU: promptembedder bench train --preset qwen2.5-0.5b --compile --json $OUT/train-bench.json ; "
               "CPU smoke: promptembedder bench train --preset tiny --batch-size 8 --query-length 16 "
               "--document-length 32 --steps 3")
    p.add_argument("--preset", choices=["qwen2.5-0.5b", "smollm2-135m", "tiny"], default="qwen2.5-0.5b",
                   help="E's shape (the Prompting LLM is SmolLM2-135M-shaped; tiny: the test presets) (default qwen2.5-0.5b)")
    p.add_argument("--configs", default="lora,pe-prefix,pe-suffix",
                   help="comma-separated configurations to run, in order, of lora, pe-prefix, pe-suffix and forward "
                        "(E's no-grad forward over the same text: what a suffix step is measured against) "
                        "(default lora,pe-prefix,pe-suffix)")
    p.add_argument("--batch-size", type=int, default=64, help="queries (and positives) per batch (default 64)")
    p.add_argument("--query-length", type=int, default=64, help="query tokens (default 64)")
    p.add_argument("--document-length", type=int, nargs="+", default=[256],
                   help="document tokens; several values run every configuration at each (default 256)")
    p.add_argument("--dtypes", nargs="+", choices=DTYPE_CHOICES, default=["auto"],
                   help="the frozen E's dtypes, each running every configuration (e.g. fp32 bf16) (default auto)")
    p.add_argument("--instruction-length", type=int, default=16,
                   help="instruction tokens: read by P, or written before each query for LoRA (default 16)")
    p.add_argument("--steps", type=int, default=10, help="measured steps per configuration (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (compilation, allocator) (default 3)")
    p.add_argument("--attn", choices=["sdpa", "eager", "flash"], default="sdpa",
                   help="attention kernel for every configuration (flash needs flash_attn installed) (default sdpa)")
    p.add_argument("--compile", action="store_true", help="torch.compile the decoder layers (E and P) in every configuration")
    p.add_argument("--soft-tokens", type=int, default=5, help="K soft tokens (default 5)")
    p.add_argument("--lora-rank", type=int, default=16, help="the baseline's LoRA rank (default 16)")
    p.add_argument("--prompter-weights", choices=["lora", "full"], default="lora",
                   help="what of P trains, as in `train` (default lora)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON here")
    p.set_defaults(handler=bench_train)


def bench_train(args: argparse.Namespace) -> int:
    import torch

    from training.bench import bench_train as run, format_table, write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    report = run(args.preset, configs, args.batch_size, args.query_length, tuple(args.document_length),
                 args.instruction_length, args.steps, args.warmup, args.attn, args.compile, args.soft_tokens,
                 args.lora_rank, args.prompter_weights, args.device, tuple(args.dtypes),
                 log=lambda m: print(m, file=sys.stderr),
                 on_result=(lambda partial: write_report(partial, args.json)) if args.json else None)
    print(format_table(report))
    if args.json:
        write_report(report, args.json)
        print(f"report written to {args.json}", file=sys.stderr)
    return 0


# ----- bench convergence ----------------------------------------------------------------------
def _register_convergence(suites) -> None:
    p = suites.add_parser(
        "convergence", help="steps and seconds to reach 95%% of a run's final dev score (from train logs)",
        description="Reads train_log.jsonl files (of `train`, `align`, `train-lora` runs with a dev set) and reports "
                    "the first step, and the training seconds until then, whose dev metric reaches --fraction of the "
                    "run's final value: e.g. alignment-only adaptation against training from scratch on one backbone.",
        epilog="example: promptembedder bench convergence runs/pe-gemma/train_log.jsonl runs/pe-gemma-scratch/train_log.jsonl")
    p.add_argument("logs", nargs="+", help="train_log.jsonl files")
    p.add_argument("--metric", default="dev_accuracy", help="dev_accuracy (default) or dev_loss")
    p.add_argument("--fraction", type=float, default=0.95, help="share of the final value to reach (default 0.95)")
    p.set_defaults(handler=bench_convergence)


def bench_convergence(args: argparse.Namespace) -> int:
    import json

    from training.bench import convergence

    for log in args.logs:
        print(json.dumps(convergence(log, args.metric, args.fraction)))
    return 0


# ----- bench levers ---------------------------------------------------------------------------
def _register_levers(suites) -> None:
    p = suites.add_parser(
        "levers", help="training runs side by side: the settings that differ, cost, and dev scores (markdown)",
        description="Reads run directories of `train`, `train-lora` or `align` and prints one markdown table row per "
                    "run: the settings that differ between the runs (detected from each run's training_args.json "
                    "and model config.json), steps, training time (the logged step times, without evaluation), "
                    "peak memory (CUDA max allocated; peak RSS on CPU), the final dev/score, the best dev/score "
                    "with its step, and every final dev metric (runs trained with dev scoring: --dev, "
                    "--dev-corpus, --dev-sts). Choose settings on these dev scores, never on a test split.",
        epilog="example: promptembedder bench levers runs/base runs/k16 runs/mean > runs/levers.md")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="training run directories (with train_log.jsonl)")
    p.add_argument("--json", action="store_true",
                   help="print JSON instead of the table: {differing_settings, runs: [{run, settings, steps, train_s, "
                        "dev_s, peak_memory_bytes, final: {dev/...}, best_score, best_step}]}")
    p.set_defaults(handler=bench_levers)


def bench_levers(args: argparse.Namespace) -> int:
    import json

    from training.levers import differing_settings, levers_table, read_run

    runs = [read_run(run) for run in args.runs]
    if args.json:
        print(json.dumps({"differing_settings": differing_settings(runs), "runs": runs}, indent=2))
    else:
        print(levers_table(runs))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m app.commands.bench_training")
    register(parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK"))
    arguments = parser.parse_args()
    sys.exit(arguments.handler(arguments))
