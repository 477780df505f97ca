"""`promptembedder serve` (the web UI) and `promptembedder demo` (index the Python docs, then serve)."""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

SERVE_EPILOG = """\
The UI has four tabs: Search; Collections (index a folder on the server or uploaded files, stats,
delete); Training (train on your data, live loss curve, make the result the active model);
Backbones (swap the Embedding LLM with a before/after comparison, switch back).

Folders: the browser can only index folders inside the --root folders (default: the demo documents
folder only; name your own with --root, never a home directory: everything under a root, hidden
folders excepted, can be indexed and searched by whoever reaches the UI); uploads are always allowed. Jobs (indexing, training,
swaps) run in the background, keep their state under $PROMPTEMBEDDER_HOME/jobs and survive a page
reload; search keeps answering while they run.

Security: the server listens on 127.0.0.1 unless --host says otherwise. Anyone who reaches it can
index the --root folders and start training: use --auth user:password before binding to another
address (a warning is printed otherwise).

examples:
  promptembedder serve                                  # http://127.0.0.1:7860
  promptembedder serve --model path/to/checkpoint --root ~/notes --root ~/papers
  promptembedder serve --host 0.0.0.0 --port 8080 --auth alice:s3cret
  promptembedder demo --model tiny                      # quick look with a tiny random model
"""


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    from .common import add_model_arguments

    add_model_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require this login in the browser")
    p.add_argument("--root", action="append", default=None, metavar="FOLDER",
                   help="a folder the browser may index (repeatable; default: only the demo documents folder)")


def register(commands) -> None:
    p = commands.add_parser("serve", help="serve the web UI (search, collections, training, backbone swap)",
                            description="Serve the PromptEmbedder web UI.", epilog=SERVE_EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_arguments(p)
    p.set_defaults(handler=serve)

    p = commands.add_parser(
        "demo", help="index the Python standard library docs as a demo collection and serve the UI",
        description="Write the documentation of ~130 Python standard-library modules (extracted from this "
                    "Python's own docstrings) under $PROMPTEMBEDDER_HOME/demo-docs, serve the UI at once, and "
                    "index the documents in the background, most familiar modules first: searches answer from "
                    "what is indexed so far (on a 2-core CPU the first slice takes well under a minute; the "
                    "whole collection a few minutes). Model: the shipped trained model, or the raw SmolLM2-135M "
                    "baseline while none is shipped; --model overrides.",
        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_server_arguments(p)
    p.add_argument("--modules", type=int, default=None, metavar="N", help="index only the first N modules (quick runs)")
    p.set_defaults(handler=demo)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth takes USER:PASSWORD, both non-empty")
    return user, password


def loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def make_state(args: argparse.Namespace, demo_collection: str | None = None):
    from app.demo import demo_dir
    from app.ui.state import AppState, ModelChoice

    from .common import model_or_default

    choice, note = AppState.saved_choice(), ""  # the last swapped-to or trained model
    if args.model is not None or args.backbone is not None or choice is None:
        name, note = model_or_default(args.model)
        choice = ModelChoice(name, args.backbone)
    roots = args.root or [str(demo_dir())]  # not the current directory: `serve` run from ~ exposed ~/.ssh
    return AppState(roots=roots, model_choice=choice, model_note=note, demo_collection=demo_collection)


def log(message: str) -> None:
    print(f"[promptembedder] {message}", file=sys.stderr, flush=True)


def launch(state, args: argparse.Namespace, examples: list[str] | None = None, started: float | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    auth = parse_auth(args.auth)
    if not loopback(args.host) and auth is None:
        log(f"WARNING: listening on {args.host} without --auth: anyone who can reach this machine can search, "
            "index the --root folders and start training")
    from app.ui.app import build_app
    from app.ui.render import CSS

    if state.model_note:
        log(state.model_note)
    log(f"model: {state.model_choice.label}; folders the browser may index: {', '.join(map(str, state.roots))}")
    threading.Thread(target=_warm_up, args=(state,), daemon=True).start()
    app = build_app(state, examples)
    app.queue(default_concurrency_limit=4)
    _, local_url, _ = app.launch(server_name=args.host, server_port=args.port, auth=auth, css=CSS, quiet=True,
                                 prevent_thread_lock=True, footer_links=[])
    url = local_url
    log(f"serving on {url}" + (f" ({time.perf_counter() - started:.1f} s after start)" if started else ""))
    print(url, flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        log("stopping; running jobs are marked interrupted and keep what they finished")
    finally:
        app.close()
    return 0


def _warm_up(state) -> None:
    """Load the active model at start, so the first search does not wait for it."""
    started = time.perf_counter()
    try:
        model = state.model()
        log(f"model loaded in {time.perf_counter() - started:.1f} s ({model.embedding.name}, dimension {model.dimension})")
    except Exception as exc:  # shown again, in the UI, by the first search
        log(f"cannot load the model {state.model_choice.label}: {exc}")


def serve(args: argparse.Namespace) -> int:
    state = make_state(args)
    return launch(state, args, started=time.perf_counter())


def demo(args: argparse.Namespace) -> int:
    from app.demo import COLLECTION, EXAMPLE_QUERIES, INSTRUCTION, build_demo_docs, demo_dir
    from app.ui.indexing import run_index

    started = time.perf_counter()
    files = build_demo_docs(limit=args.modules, log=log)
    state = make_state(args, demo_collection=COLLECTION)
    folder = demo_dir()
    if args.modules is not None:  # a partial demo indexes exactly those files
        paths = list(files)
    else:
        paths = [folder]
    job = state.jobs.start("index", f"index the Python docs into '{COLLECTION}'",
                           lambda ctx: run_index(ctx, state, COLLECTION, paths, ordered_files=files,
                                                 instruction=INSTRUCTION),
                           {"collection": COLLECTION, "paths": [str(p) for p in paths]})
    threading.Thread(target=_report_demo_progress, args=(state, job, started), daemon=True).start()
    return launch(state, args, EXAMPLE_QUERIES, started)


def _report_demo_progress(state, job: str, started: float) -> None:
    """Console lines: when the first documents become searchable, and when all are."""
    first = False
    while True:
        status = state.jobs.get(job) or {}
        done = (status.get("result") or {}).get("files_done", 0)
        if done and not first:
            first = True
            log(f"demo: first {done} documents searchable, {time.perf_counter() - started:.1f} s after start")
        if status.get("state") in ("done", "failed", "cancelled", "interrupted"):
            log(f"demo indexing {status['state']}: {status.get('message')} "
                f"({time.perf_counter() - started:.1f} s after start)")
            return
        time.sleep(1)
