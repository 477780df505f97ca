"""`promptembedder models` and `promptembedder prepare`."""
from __future__ import annotations

import argparse


def register(commands) -> None:
    p = commands.add_parser("models", help="list the backbones, their role, size and readiness",
                            description="List the backbones this installation knows and whether each is ready.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=list_models)

    p = commands.add_parser("prepare", help="convert backbone GGUFs into the safetensors cache (once)",
                            description="Convert real backbones from their installed packages into the "
                            "safetensors cache. Idempotent and safe to interrupt.")
    p.add_argument("names", nargs="*", help="backbones to prepare (see `promptembedder models`)")
    p.add_argument("--all", action="store_true", help="prepare every real backbone whose package is installed")
    p.add_argument("--force", action="store_true", help="convert again even if the cache looks complete")
    p.set_defaults(handler=prepare_backbones)


def list_models(args: argparse.Namespace) -> int:
    import json

    from embedder.backbones import BACKBONES

    rows = [dict(name=b.name, arch=b.arch, role=b.role, hidden=b.hidden_size, layers=b.layers, params=b.params,
                 license=b.license, status=b.status()) for b in BACKBONES.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["name", "arch", "params", "hidden", "layers", "status", "role"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    not_ready = [r["name"] for r in rows if r["status"] != "ready"]
    if not_ready:
        print(f"\nnot ready: {', '.join(not_ready)}; run `promptembedder prepare --all` (after scripts/setup.sh)")
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
