"""`promptembedder prepare-data | train | train-lora | align`: data preparation and the three trainings."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedder.checkpoint import resolve_model_name
from embedder.dtypes import DTYPE_CHOICES, DTYPE_HELP

DATA_FORMS = (
    "KIND:PATH[::INSTRUCTION] with KIND one of jsonl (records {instruction, query, positive, negatives, task}), "
    "beir (a BEIR folder; its train qrels), sts (an STS Benchmark file; pairs scoring >= 4), qa (question/answer "
    "JSONL such as MedQuAD's pairs.jsonl), paraphrase (a folder with a.toks, b.toks, sim.txt); a bare path is "
    "JSONL. The optional ::INSTRUCTION is the task's instruction (default: one per kind)"
)


def register(commands) -> None:
    _register_prepare(commands)
    _register_train(commands)
    _register_train_lora(commands)
    _register_align(commands)
    _register_dev_score(commands)


# ----- options --------------------------------------------------------------------------------
def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", required=True, metavar="SPEC",
                   help=f"training data, repeatable (one task per source). {DATA_FORMS}")
    g.add_argument("--dev", action="append", default=None, metavar="SPEC",
                   help="dev data for periodic evaluation, same forms as --data (default: hold out --dev-fraction)")
    g.add_argument("--dev-fraction", type=float, default=0.02,
                   help="share of training queries held out as the dev set when no --dev is given (default 0.02; 0: none)")
    g.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="malformed records: stop with file and line (raise, default) or leave them out and report (skip)")
    g.add_argument("--hard-negatives", type=int, default=1,
                   help="hard negatives per record taken from its 'negatives' (default 1; prepare-data mines them)")
    g.add_argument("--task-weight", action="append", default=[], metavar="TASK=W",
                   help="sample TASK's batches W times as often as its size alone would (default 1; 0 leaves it out); "
                        "repeatable. TASK as prepare-data's summary.json names it, e.g. beir:scifact=4")
    _add_dev_score_arguments(p)


def _add_dev_score_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dev scores", "logged to train_log.jsonl at every --eval-every step and at the end "
                             "(dev/TASK/ndcg_at_10, dev/TASK/recall_at_10, dev/sts/spearman, dev/score: their mean); "
                             "compare runs with `promptembedder bench levers`")
    g.add_argument("--dev-corpus", action="append", default=[], metavar="TASK=PATH",
                   help="extend TASK's dev retrieval corpus (the positives and negatives of its dev records) with a "
                        "BEIR corpus.jsonl or folder, e.g. beir:scifact=data/scifact/corpus.jsonl; repeatable. "
                        "TASK is the records' task name (prepare-data's summary.json lists them)")
    g.add_argument("--dev-sts", default=None, metavar="FILE",
                   help="also score Spearman on an STS Benchmark dev file, e.g. data/stsbenchmark/sts-dev.csv "
                        "(test splits are refused)")
    g.add_argument("--dev-max-queries", type=int, default=None, metavar="N",
                   help="dev retrieval queries per task, a fixed subset beyond that, searching a corpus of their own "
                        "positives and negatives cut to --document-length (bounds each evaluation's cost) "
                        "(default 200 on CUDA, 24 on the CPU)")
    g.add_argument("--dev-max-sts-pairs", type=int, default=None, metavar="N",
                   help="a fixed subset of the --dev-sts pairs (default: all on CUDA, 200 on the CPU)")
    g.add_argument("--no-dev-retrieval", action="store_true",
                   help="no retrieval scoring of the dev records (dev loss/accuracy and --dev-sts only)")


def _add_training_arguments(p: argparse.ArgumentParser, lr: float, max_steps: int = 1000) -> None:
    g = p.add_argument_group("training")
    g.add_argument("-o", "--output", required=True,
                   help="run directory: checkpoints, train_log.jsonl, and at the end the trained model")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --output from its latest checkpoint (same data; the "
                        "saved settings are used)")
    g.add_argument("--max-steps", type=int, default=max_steps, help=f"optimizer steps (default {max_steps})")
    g.add_argument("--batch-size", type=int, default=32,
                   help="queries per batch; each brings its positive and hard negatives, all in-batch negatives "
                        "for the others (default 32)")
    g.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step (default 1)")
    g.add_argument("--lr", type=float, default=lr, help=f"peak learning rate of the trained weights (default {lr:g})")
    g.add_argument("--warmup-steps", type=int, default=50, help="linear warm-up steps, then cosine decay (default 50)")
    g.add_argument("--min-lr-ratio", type=float, default=0.0, help="cosine decays to lr x this (default 0)")
    g.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm (default 1.0)")
    g.add_argument("--temperature", type=float, default=0.05, help="InfoNCE temperature (default 0.05)")
    g.add_argument("--learnable-temperature", action="store_true",
                   help="learn the InfoNCE temperature (starting from --temperature, kept >= 0.01)")
    g.add_argument("--query-length", type=int, default=64,
                   help="query tokens kept (an instruction written as text comes on top) (default 64)")
    g.add_argument("--document-length", type=int, default=256, help="document tokens kept (default 256)")
    g.add_argument("--eval-every", type=int, default=100, help="dev evaluation every N steps (default 100)")
    g.add_argument("--eval-batches", type=int, default=8, help="dev batches per evaluation (default 8)")
    g.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps, 0 for none (default 200)")
    g.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept (default 2)")
    g.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and noise (default 0)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    g.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto",
                   help=DTYPE_HELP + "; trainable weights and their optimizer state stay fp32")
    g.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute E's activations in the backward pass (less memory; no effect on the cached suffix path)")
    g.add_argument("--length-buckets", type=int, default=1,
                   help="embed each side of a batch in N length-sorted chunks: less padding in E's text pass "
                        "(same vectors; try 2-4 with documents of mixed lengths) (default 1)")
    g.add_argument("--text-reuse", type=int, default=1, metavar="R",
                   help="suffix placement: give each block of --reuse-block batches R optimizer passes over one text "
                        "pass (E frozen and the soft tokens after the text: the text's KV cache depends on nothing "
                        "that trains), so a step costs about P + the K soft positions + 1/R of the text pass "
                        "(default 1: a fresh batch every step, the paper's method)")
    g.add_argument("--reuse-block", type=int, default=4, metavar="N",
                   help="batches whose text caches are held at once with --text-reuse; memory is N x tokens per "
                        "batch x layers x 2 x KV width x bytes, e.g. SmolLM2 fp32 at 16 x (32 + 2 x 128) tokens: "
                        "~210 MB per batch (default 4)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _train_config(args: argparse.Namespace, mode: str, **extra):
    from training.trainer import TrainConfig

    return TrainConfig(
        output_dir=args.output, mode=mode, max_steps=args.max_steps, batch_size=args.batch_size,
        grad_accum=args.grad_accum, lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        min_lr_ratio=args.min_lr_ratio, max_grad_norm=args.max_grad_norm, temperature=args.temperature,
        learnable_temperature=args.learnable_temperature, hard_negatives=args.hard_negatives,
        query_length=args.query_length, document_length=args.document_length, eval_every=args.eval_every,
        eval_batches=args.eval_batches, save_every=args.save_every, keep_checkpoints=args.keep_checkpoints,
        seed=args.seed, bf16=not args.no_bf16, gradient_checkpointing=args.gradient_checkpointing,
        progress=not args.no_progress, length_buckets=args.length_buckets, dev_retrieval=not args.no_dev_retrieval,
        dev_corpus=args.dev_corpus, dev_sts=args.dev_sts, dev_max_queries=args.dev_max_queries,
        dev_max_sts_pairs=args.dev_max_sts_pairs, task_weights=_task_weights(args.task_weight),
        text_reuse=args.text_reuse, reuse_block=args.reuse_block, **extra)


def _task_weights(specs: list[str]) -> dict[str, float]:
    weights = {}
    for spec in specs:
        task, sep, value = spec.rpartition("=")
        try:
            weights[task] = float(value)
        except ValueError:
            task = ""
        if not (sep and task):
            raise ValueError(f"--task-weight {spec!r}: expected TASK=WEIGHT, e.g. beir:scifact=4")
    return weights


# ----- prepare-data ---------------------------------------------------------------------------
def _register_prepare(commands) -> None:
    p = commands.add_parser(
        "prepare-data", help="read training sources, mine BM25 hard negatives, write train/dev JSONL",
        description="Read the given sources, mine hard negatives with BM25 (bm25s), hold out a dev split by query "
                    "and write OUTPUT/train.jsonl, OUTPUT/dev.jsonl and OUTPUT/summary.json. The trainer reads these "
                    "with the standard library only (the GPU machine needs neither datasets nor bm25s).",
        epilog="example: promptembedder prepare-data --data beir:data/scifact::'Given a scientific claim, retrieve "
               "abstracts that support or refute it.' --data qa:data/medquad/pairs.jsonl --data sts:data/sts-train.csv "
               "-o runs/data")
    p.add_argument("--data", action="append", required=True, metavar="SPEC", help=f"a source, repeatable. {DATA_FORMS}")
    p.add_argument("-o", "--output", required=True, help="folder for train.jsonl, dev.jsonl, summary.json")
    p.add_argument("--hard-negatives", type=int, default=1, help="BM25 negatives mined per record (default 1; 0: none)")
    p.add_argument("--skip-top", type=int, default=0,
                   help="leave out the N best BM25 candidates (often unlabelled positives) (default 0)")
    p.add_argument("--dev-fraction", type=float, default=0.02, help="share of queries held out as dev (default 0.02)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle and the dev split (default 0)")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="malformed records: stop with file and line (raise, default) or leave them out (skip)")
    p.set_defaults(handler=prepare_data)


def prepare_data(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from training.prepare import prepare_data as prepare

    summary = prepare(args.data, Path(args.output), args.hard_negatives, args.dev_fraction, args.seed,
                      args.on_error, args.skip_top, show_progress=sys.stderr.isatty())
    for message in summary["problems"]:
        print(f"skipped: {message}", file=sys.stderr)
    print(json.dumps({k: v for k, v in summary.items() if k != "problems"}, indent=2))
    return 0


# ----- train ----------------------------------------------------------------------------------
def _register_train(commands) -> None:
    p = commands.add_parser(
        "train", help="train PromptEmbedder (the Prompting LLM and the alignment; E stays frozen)",
        description="Contrastive training (InfoNCE, in-batch + hard negatives) of the soft-prompt generator: the "
                    "Prompting LLM (LoRA adapters by default, or all its weights) and the alignment into the frozen "
                    "Embedding LLM. Batches come from one task at a time. Writes checkpoints every --save-every "
                    "steps and the trained model into --output; --resume continues an interrupted run exactly.",
        epilog="example: promptembedder train --data runs/data/train.jsonl --dev runs/data/dev.jsonl "
               "--backbone qwen2.5-0.5b -o runs/pe --max-steps 1000")
    _add_data_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default=None,
                   help="the frozen Embedding LLM (default: qwen2.5-0.5b on CUDA, smollm2-135m on CPU; tiny-* for tests)")
    g.add_argument("--prompter", default=None,
                   help="the Prompting LLM backbone (default smollm2-135m; tiny-llama with a tiny backbone)")
    g.add_argument("--prompter-weights", choices=["lora", "full"], default=None,
                   help="train LoRA adapters on P (checkpoint of a few MB, default) or all of P's weights")
    g.add_argument("--prompter-lora-rank", type=int, default=None, help="LoRA rank on P (default 16)")
    g.add_argument("--soft-tokens", type=int, default=None, help="K, soft tokens per instruction (default 5)")
    g.add_argument("--placement", choices=["suffix", "prefix"], default=None,
                   help="soft tokens after the text (default; the text pass runs without autograd) or before it")
    g.add_argument("--pooling", choices=["last", "mean"], default=None, help="pooling of E's states (default last)")
    g.add_argument("--soft-token-source", choices=["hidden", "embedding"], default=None,
                   help="hand on P's hidden state or the relaxed mixed embedding (default hidden)")
    g.add_argument("--straight-through", action="store_true", help="hard one-hot forward, soft gradient backward")
    g.add_argument("--deep-rank", type=int, default=None,
                   help="extension beyond the paper: the alignment also adds a rank-R projection of P's vectors to "
                        "E's hidden states at the soft positions after every layer (zero at the start; backbone "
                        "swaps still train the alignment alone) (default 0: off)")
    g.add_argument("--tau-start", type=float, default=None,
                   help="Gumbel-softmax temperature at the start (default 1.0; with --init-from the model's own)")
    g.add_argument("--tau-end", type=float, default=None,
                   help="... annealed geometrically to this (default 0.3; with --init-from the model's own)")
    g.add_argument("--alignment-lr", type=float, default=1e-3, help="peak learning rate of the alignment (default 1e-3)")
    g.add_argument("--no-cached-text", action="store_true",
                   help="suffix placement: run the text with autograd too (same result, more memory; for comparison)")
    g.add_argument("--query-instruction", default=None,
                   help="the model's default query instruction (for encode without --instruction)")
    g.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from a trained PromptEmbedder (a directory, or 'default' for the shipped one) "
                        "instead of fresh adapters: a new run with its own optimizer and schedule that continues "
                        "its weights. The model options above come from MODEL (giving one that differs is an "
                        "error); --backbone picks which of its aligned Embedding LLMs to train on")
    _add_training_arguments(p, lr=1e-4)
    p.set_defaults(handler=train)


def _default_backbones(args: argparse.Namespace) -> tuple[str, str]:
    import torch

    cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    backbone = args.backbone or ("qwen2.5-0.5b" if cuda else "smollm2-135m")
    prompter = args.prompter or ("tiny-llama" if backbone.startswith("tiny") else "smollm2-135m")
    return backbone, prompter


def train(args: argparse.Namespace) -> int:
    from embedder.model import PromptEmbedderConfig

    if args.resume:
        return _resume(args, "prompter")
    model = _trained_model(args) if args.init_from else None
    for option, value in FRESH_MODEL_DEFAULTS.items():  # unset model options: MODEL's values, else the defaults
        if getattr(args, option) is None:
            setattr(args, option, value)
    tau = model.config.gumbel_tau if model is not None else None
    train_config = _train_config(args, "prompter", alignment_lr=args.alignment_lr,
                                 tau_start=args.tau_start or tau or 1.0, tau_end=args.tau_end or tau or 0.3,
                                 cached_text=not args.no_cached_text)
    if model is not None:
        train_config.init_from = f"{resolve_model_name(args.init_from)} (fingerprint {model.fingerprint})"
        return _run(model, train_config, args)
    backbone, prompter = _default_backbones(args)
    config = PromptEmbedderConfig(
        embedding_backbone=backbone, prompting_backbone=prompter, num_soft_tokens=args.soft_tokens,
        placement=args.placement, pooling=args.pooling, soft_token_source=args.soft_token_source,
        straight_through=args.straight_through, prompter_weights=args.prompter_weights, deep_rank=args.deep_rank,
        prompter_lora={"r": args.prompter_lora_rank, "lora_alpha": 2 * args.prompter_lora_rank}
        if args.prompter_weights == "lora" else None)
    if args.query_instruction:
        config.query_instruction = args.query_instruction
    return _run(_fresh_model(config, args), train_config, args)


# train's model options (None when not given), their defaults for a fresh model, the config fields they set
FRESH_MODEL_DEFAULTS = {"soft_tokens": 5, "placement": "suffix", "pooling": "last", "soft_token_source": "hidden",
                        "prompter_weights": "lora", "deep_rank": 0, "prompter_lora_rank": 16}
_MODEL_OPTIONS = {"prompter": "prompting_backbone", "soft_tokens": "num_soft_tokens", "placement": "placement",
                  "pooling": "pooling", "soft_token_source": "soft_token_source",
                  "straight_through": "straight_through", "prompter_weights": "prompter_weights",
                  "deep_rank": "deep_rank"}


def _trained_model(args: argparse.Namespace):
    """--init-from: the trained model on the asked backbone, device and dtype; a model option given on the
    command line that differs from the model's is an error rather than silently ignored."""
    import torch

    from embedder import PromptEmbedder
    from training.errors import TrainingError

    if not isinstance(resolve_model_name(args.init_from), Path):
        raise TrainingError(f"--init-from {args.init_from}: not a trained model directory; to train a new model "
                            "on a backbone, leave out --init-from and pass --backbone")
    torch.manual_seed(args.seed)
    model = PromptEmbedder.from_pretrained(args.init_from, backbone=args.backbone, device=args.device,
                                           dtype=args.dtype, merge_lora=False)
    if model.prompter is None or model.config.prompter_weights not in ("lora", "full"):
        raise TrainingError(f"--init-from {args.init_from}: not a trained PromptEmbedder (no trained Prompting "
                            "LLM; a LoRA baseline continues with train-lora --resume)")
    own = {option: getattr(model.config, key) for option, key in _MODEL_OPTIONS.items()}
    lora = model.config.prompter_lora or {}
    own["prompter_lora_rank"] = lora.get("r", FRESH_MODEL_DEFAULTS["prompter_lora_rank"])
    for option, mine in own.items():
        given = getattr(args, option)
        if given is not None and given is not False and given != mine:  # (0 == False: compare by identity)
            flag = "--" + option.replace("_", "-")
            raise TrainingError(f"--init-from {args.init_from}: the model has {flag.removeprefix('--')} {mine!r}; "
                                f"leave out {flag} {given!r} (the model options come from the model)")
        setattr(args, option, mine)
    if model.extra_alignments or model.config.cpu_backbone:
        # P changes in this run: alignments fitted to the old P would no longer match it
        others = ", ".join(model.extra_alignments) or model.config.cpu_backbone
        print(f"note: the new model keeps only its alignment to {model.embedding.name}; realign {others} with "
              "`promptembedder align`", file=sys.stderr)
        model.extra_alignments.clear()
        model.config.cpu_backbone = None
    if args.query_instruction:
        model.config.query_instruction = args.query_instruction
    return model


# ----- train-lora -----------------------------------------------------------------------------
def _register_train_lora(commands) -> None:
    p = commands.add_parser(
        "train-lora", help="train the LoRA baseline (PEFT LoRA on the Embedding LLM, instruction as text)",
        description="The baseline PromptEmbedder is compared with: LoRA adapters on every attention and MLP "
                    "projection of the Embedding LLM, the task instruction written before each query as text, "
                    "the same data, loss, batches, lengths and steps. The result loads like any model "
                    "(--model DIR in encode, evaluate, index).",
        epilog="example: promptembedder train-lora --data runs/data/train.jsonl --backbone qwen2.5-0.5b -o runs/lora")
    _add_data_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default=None,
                   help="the Embedding LLM (default: qwen2.5-0.5b on CUDA, smollm2-135m on CPU; tiny-* for tests)")
    g.add_argument("--lora-rank", type=int, default=16, help="LoRA rank (default 16)")
    g.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default 2 x rank)")
    g.add_argument("--pooling", choices=["last", "mean"], default="last", help="pooling (default last)")
    _add_training_arguments(p, lr=2e-4)
    p.set_defaults(handler=train_lora)


def train_lora(args: argparse.Namespace) -> int:
    from training.lora_baseline import lora_config

    if args.resume:
        return _resume(args, "lora")
    backbone, _ = _default_backbones(argparse.Namespace(**{**vars(args), "prompter": None}))
    config = lora_config(backbone, rank=args.lora_rank, alpha=args.lora_alpha, pooling=args.pooling)
    model = _fresh_model(config, args)
    return _run(model, _train_config(args, "lora"), args)


# ----- align ----------------------------------------------------------------------------------
def _register_align(commands) -> None:
    p = commands.add_parser(
        "align", help="adapt a trained checkpoint to a new Embedding LLM (trains only a new alignment)",
        description="Keep the trained Prompting LLM frozen and train only a new alignment matrix into another "
                    "Embedding LLM, with the same loss and data. The checkpoint written to --output holds every "
                    "earlier alignment plus the new one; load either with --backbone.",
        epilog="example: promptembedder align --model runs/pe --backbone gemma3-270m --data runs/data/train.jsonl "
               "-o runs/pe-gemma --max-steps 200")
    _add_data_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, help="the trained PromptEmbedder checkpoint directory")
    g.add_argument("--backbone", required=True, help="the new Embedding LLM (a registry name)")
    g.add_argument("--no-cached-text", action="store_true", help="suffix placement: text pass with autograd too")
    _add_training_arguments(p, lr=1e-3, max_steps=300)
    p.set_defaults(handler=align)


def align(args: argparse.Namespace) -> int:
    import torch

    from embedder import PromptEmbedder
    from training.align import attach_backbone

    if args.resume:
        return _resume(args, "alignment")
    torch.manual_seed(args.seed)
    model = PromptEmbedder.from_pretrained(args.model, device=args.device, dtype=args.dtype, merge_lora=False)
    model = attach_backbone(model, args.backbone, seed=args.seed)
    train_config = _train_config(args, "alignment", alignment_lr=args.lr, cached_text=not args.no_cached_text)
    return _run(model, train_config, args)


# ----- dev-score ------------------------------------------------------------------------------
def _register_dev_score(commands) -> None:
    p = commands.add_parser(
        "dev-score", help="a trained model's dev scores, as the trainer logs them (choose models on dev)",
        description="Score models on dev data exactly as `train` does at each --eval-every step (the same dev "
                    "records, the same subsets, documents cut to --document-length): runs and checkpoints can then "
                    "be compared on dev, e.g. a new run against the shipped model, without touching a test set. "
                    "Settings not given come from the model's run (its training_args.json). The dev records come "
                    "as files (prepare-data writes dev.jsonl); a run that held out --dev-fraction of its --data "
                    "cannot be rescored this way.",
        epilog="example: promptembedder dev-score --model default --model runs/pe --dev runs/data/dev.jsonl "
               "--dev-sts ../shared/data/stsbenchmark/sts-dev.csv --document-length 256")
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="a checkpoint directory or 'default' (the shipped model); repeatable")
    p.add_argument("--dev", action="append", required=True, metavar="SPEC", help=f"dev data, repeatable. {DATA_FORMS}")
    p.add_argument("--document-length", type=int, default=None,
                   help="document tokens kept (default: the model's run's --document-length, else 256); give it "
                        "to compare models trained at different lengths on the same dev set")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise", help="malformed records (default raise)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="texts per forward pass (default: the model's run's, else 32)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=None,
                   help=DTYPE_HELP + " (default: the dtype the model's run trained with, else auto)")
    p.add_argument("--output", default=None, metavar="FILE", help="also write the scores as JSON here")
    _add_dev_score_arguments(p)
    p.set_defaults(handler=dev_score)


def dev_score(args: argparse.Namespace) -> int:
    import json

    from training.data import read_sources
    from training.dev_score import dev_corpora
    from training.errors import TrainingError

    records, problems = read_sources(list(args.dev), args.on_error)
    for message in problems[:20]:
        print(f"skipped: {message}", file=sys.stderr)
    if args.dev_sts and not Path(args.dev_sts).is_file():
        raise TrainingError(f"--dev-sts {args.dev_sts}: no such file")
    corpora = dev_corpora(args.dev_corpus)  # a malformed spec fails before any model loads
    rows = [_dev_score_row(name, records, corpora, args) for name in args.model]
    if args.output:
        Path(args.output).write_text(json.dumps({"dev": args.dev, "dev_sts": args.dev_sts, "rows": rows}, indent=2) + "\n")
    return 0


def _dev_score_row(name: str, records, corpora: dict[str, str], args: argparse.Namespace) -> dict:
    """One model's dev scores, with the settings of its own run (training_args.json) where not given."""
    import json
    import time

    import torch

    from embedder import PromptEmbedder
    from training.dev_score import dev_scores

    path = resolve_model_name(name)
    run_file = Path(path) / "training_args.json" if isinstance(path, Path) else None
    run = json.loads(run_file.read_text()) if run_file is not None and run_file.is_file() else {}
    document_length = args.document_length or run.get("document_length") or 256
    batch_size = args.batch_size or run.get("batch_size") or 32
    model = PromptEmbedder.from_pretrained(name, device=args.device, dtype=args.dtype or run.get("dtype") or "auto")
    model.set_padding_side("right")  # as the trainer pads
    cuda = model.device.type == "cuda"  # the trainer's subsets: small enough on the CPU
    start = time.perf_counter()
    with torch.no_grad():  # a loaded model generates at its config's Gumbel temperature, as the trainer scores
        scores = dev_scores(model, records, corpora, args.dev_sts, batch_size,
                            args.dev_max_queries or run.get("dev_max_queries") or (200 if cuda else 24),
                            args.dev_max_sts_pairs or run.get("dev_max_sts_pairs") or (None if cuda else 200),
                            document_length, retrieval=not args.no_dev_retrieval)
    print(f"{name}: dev/score {scores.get('dev/score', float('nan')):.4f}  " + "  ".join(
        f"{k.removeprefix('dev/')} {v:.4f}" for k, v in scores.items() if k.endswith(("ndcg_at_10", "spearman"))))
    return {"model": name, "document_length": document_length, "batch_size": batch_size, **scores,
            "seconds": round(time.perf_counter() - start, 1)}


# ----- shared ---------------------------------------------------------------------------------
def _fresh_model(config, args: argparse.Namespace):
    import torch

    from embedder import PromptEmbedder

    torch.manual_seed(args.seed)  # LoRA adapters draw their initial values from the global generator
    return PromptEmbedder.from_config(config, seed=args.seed).to_device(args.device, args.dtype)


def _run(model, train_config, args: argparse.Namespace, resume_from=None) -> int:
    from app.services.training import read_data, trainer
    from training.trainer import count_trainable

    records, dev, problems = read_data(args.data, args.dev, args.dev_fraction, args.seed, args.on_error)
    for message in problems[:20]:
        print(f"skipped: {message}", file=sys.stderr)
    if len(problems) > 20:
        print(f"skipped: ... {len(problems) - 20} more malformed records", file=sys.stderr)
    run = trainer(model, records, train_config, dev)  # selects what trains: counted below
    print(f"{train_config.mode}: {len(records)} training records, {len(dev)} dev, "
          f"{count_trainable(model):,} trainable parameters, device {model.device}", file=sys.stderr)
    output = run.train(resume_from=resume_from)
    print(f"trained model saved to {output} (log: {output / 'train_log.jsonl'})")
    return 0


def _resume(args: argparse.Namespace, mode: str) -> int:
    from pathlib import Path

    from embedder import PromptEmbedder
    from training.errors import TrainingError
    from training.trainer import checkpoint_dtype, latest_checkpoint, saved_config

    checkpoint = latest_checkpoint(Path(args.output))
    if checkpoint is None:
        raise TrainingError(f"--resume: {args.output} has no checkpoint to resume from")
    train_config = saved_config(checkpoint)
    if train_config.mode != mode:
        raise TrainingError(f"{checkpoint} is a '{train_config.mode}' run, not '{mode}'")
    train_config.output_dir, train_config.progress = args.output, not args.no_progress
    args.seed = train_config.seed  # the dev split depends on it: the same records as before
    args.dtype = checkpoint_dtype(checkpoint)  # the frozen E as the interrupted run had it
    print(f"resuming from {checkpoint}", file=sys.stderr)
    model = PromptEmbedder.from_pretrained(checkpoint, device=args.device, dtype=args.dtype, merge_lora=False)
    return _run(model, train_config, args, resume_from=checkpoint)
