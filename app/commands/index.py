"""`promptembedder index | search | collections | delete | stats`: document collections from the command line."""
from __future__ import annotations

import argparse
import json
import os
import sys

from indexer.fusion import DEFAULT_KEYWORD_WEIGHT, MODES, SCORE_MEANING

from .common import add_model_arguments, load_model

STORE_HELP = "where collections live (default: $PROMPTEMBEDDER_HOME/collections)"


def add_store_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, metavar="DIR", help=STORE_HELP)
    p.add_argument("--db", default=None, metavar="URL",
                   help="any SQLAlchemy database URL for the metadata (default: SQLite in the store directory)")


def register(commands) -> None:
    p = commands.add_parser(
        "index", help="index files and folders into a collection (incremental)",
        description="Load, chunk and embed documents into a collection. Re-running embeds only new or changed "
        "files and removes files deleted from the given folders. Without PATH, builds or completes this "
        "model's and instruction's index from the chunks already stored.",
        epilog="Formats: text, Markdown, HTML, JSON/JSONL (--text-field), CSV/TSV (--csv-columns), PDF. "
        "Files that cannot be read are listed at the end; the others are indexed.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders")
    p.add_argument("-c", "--collection", required=True, help="collection name (created if new)")
    p.add_argument("--instruction", action="append", default=None,
                   help="query-side instruction searches will use (default: the model's); each instruction gets "
                   "its own index. Repeat it with --document-instruction to build several indexes in one run: "
                   "the n-th of each form a pair, and each text is read once for all of them")
    p.add_argument("--document-instruction", action="append", default=None,
                   help="document-side instruction (default: the model's); repeatable, paired with --instruction")
    add_model_arguments(p)
    p.add_argument("--index-type", choices=["auto", "flat", "ivf", "ivfpq", "hnsw"], default=None,
                   help="FAISS index type (default auto: exact below 50k vectors, IVF above, IVF-PQ once IVF's "
                   "vectors would pass PROMPTEMBEDDER_INDEX_MEMORY_GB, default half the RAM)")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~4*sqrt(vectors))")
    p.add_argument("--pq-m", type=int, default=None,
                   help="IVF-PQ bytes per vector (must divide the dimension; default the largest divisor <= 64)")
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists searched per query")
    p.add_argument("--hnsw-m", type=int, default=None, help="HNSW neighbours per node (default 32)")
    p.add_argument("--ef-search", type=int, default=None, help="HNSW search depth (default 64)")
    p.add_argument("--chunk-tokens", type=int, default=None, help="chunk size in model tokens (default 256; "
                   "fixed when a collection is created)")
    p.add_argument("--chunk-overlap", type=int, default=None, help="tokens shared by neighbouring chunks (default 32)")
    p.add_argument("--text-field", default="text", help="JSON/JSONL field to embed (default text); "
                   "the other fields become metadata")
    p.add_argument("--csv-columns", default=None, help="comma-separated CSV columns to embed "
                   "(default: 'text' if present, else all); the others become metadata")
    p.add_argument("--max-file-mb", type=float, default=64, help="skip larger files (default 64)")
    p.add_argument("--batch-chunks", type=int, default=64, help="chunks embedded and committed together (default 64)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="embed on a Ray cluster (needs `pip install 'promptembedder[ray]'`): without ADDRESS a local "
                   "one sized to this machine; else a running cluster's (HOST:6379, or ray://HOST:10001 with "
                   "ray[client]). Same rows and vectors as without it; see the README")
    p.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="embedding actors, each holding one model (default: one per GPU, else one per CPU)")
    p.add_argument("--ray-shards", default=None, metavar="DIR",
                   help="where workers write shards before they are ingested (default: STORE/ray-jobs; on a "
                   "cluster of several machines, a folder they and this machine share)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_store_arguments(p)
    p.set_defaults(handler=index_command)

    p = commands.add_parser("search", help="search a collection (hybrid: keywords and meaning)",
                            description="Rank a collection's documents for a query: by meaning (the query embedded "
                            "with the index's instruction), by keywords (BM25 over the chunks' words), or both "
                            "fused (hybrid, the default). One hit per document (per row for JSON and CSV files), "
                            "its best passage shown with the query's words marked. --model defaults to the model "
                            "the collection was indexed with.")
    p.add_argument("query")
    p.add_argument("-c", "--collection", required=True)
    p.add_argument("-k", type=int, default=5, help="results per page (default 5)")
    p.add_argument("--page", type=int, default=1, help="which page of k results (default 1)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="hybrid (default): reciprocal-rank fusion of semantic and keyword; semantic: embeddings "
                        "only; keyword: BM25 only")
    p.add_argument("--keyword-weight", type=float, default=DEFAULT_KEYWORD_WEIGHT,
                   help=f"hybrid: the keyword ranking's share of the fusion, 0-1 (default {DEFAULT_KEYWORD_WEIGHT})")
    p.add_argument("--chunks", action="store_true", help="one hit per chunk instead of one per document")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata filter, repeatable: key=value, key!=value, key>=value, key<value, ... "
                   "(keys: JSON fields, CSV columns, page, name, ext, modified, path, title)")
    p.add_argument("--path", default=None, metavar="PREFIX", help="only documents whose source path starts so")
    p.add_argument("--instruction", default=None, help="pick the index built for this instruction")
    add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="JSON out: source path, chunk text, score and metadata per hit")
    add_store_arguments(p)
    p.set_defaults(handler=search_command)

    p = commands.add_parser("collections", help="list collections and their indexes")
    p.add_argument("--json", action="store_true")
    add_store_arguments(p)
    p.set_defaults(handler=collections_command)

    p = commands.add_parser("delete", help="delete documents from a collection, or the whole collection",
                            description="With PATHs, delete those documents (a folder deletes everything under "
                            "it) from every index of the collection; without, delete the collection.")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("-c", "--collection", required=True)
    add_store_arguments(p)
    p.set_defaults(handler=delete_command)

    p = commands.add_parser("stats", help="sizes of a collection; --check compares SQLite and FAISS",
                            description="Documents, chunks and indexes. --check verifies every vector has its "
                            "row and every row its vector; --repair fixes what it finds (needs the model).")
    p.add_argument("-c", "--collection", default=None, help="one collection (default: all)")
    p.add_argument("--check", action="store_true", help="verify SQLite and FAISS agree")
    p.add_argument("--repair", action="store_true", help="with --check: remove stray vectors, embed missing ones")
    add_model_arguments(p)
    p.add_argument("--json", action="store_true")
    add_store_arguments(p)
    p.set_defaults(handler=stats_command)


def open_store(args: argparse.Namespace):
    from indexer import Store

    return Store(args.store, args.db)


def _index_params(args: argparse.Namespace) -> dict:
    names = {"nlist": args.nlist, "nprobe": args.nprobe, "M": args.hnsw_m, "efSearch": args.ef_search,
             "pq_m": args.pq_m}
    return {k: v for k, v in names.items() if v is not None}


def index_command(args: argparse.Namespace) -> int:
    from app.services import indexing
    from indexer import LoaderOptions

    indexing.check_paths(args.paths)  # before the model loads
    options = LoaderOptions(text_field=args.text_field,
                            csv_columns=[c.strip() for c in args.csv_columns.split(",")] if args.csv_columns else None,
                            max_file_bytes=int(args.max_file_mb * 2**20))
    pairs = indexing.instruction_pairs(args.instruction or [], args.document_instruction or [])
    model = load_model(args)
    with open_store(args) as store:
        report = indexing.index(store, args.collection, model, args.paths, pairs=pairs, options=options,
                                model_name=args.model or "", batch_chunks=args.batch_chunks,
                                index_type=args.index_type, index_params=_index_params(args),
                                chunk_tokens=args.chunk_tokens, chunk_overlap=args.chunk_overlap,
                                ray=args.ray, ray_workers=args.ray_workers, ray_shards=args.ray_shards,
                                backbone=args.backbone)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.summary())
    return 0


def search_command(args: argparse.Namespace) -> int:
    from app.services.search import model_for, search

    if args.k < 1 or args.page < 1:
        raise ValueError("-k and --page must be at least 1")
    with open_store(args) as store:
        def load(name: str | None):
            args.model = name
            return load_model(args)

        model, instruction = model_for(store, args.collection, args.model, args.instruction, args.mode, load)
        offset = (args.page - 1) * args.k
        found = search(store, args.collection, args.query, model, instruction, k=args.k, offset=offset,
                       mode=args.mode, filters=args.filter, path_prefix=args.path, group=not args.chunks,
                       keyword_weight=args.keyword_weight)
    if args.json:
        print(json.dumps({"query": args.query, "collection": args.collection, "instruction": found.instruction,
                          "mode": found.mode, "score": SCORE_MEANING[found.mode], "page": args.page,
                          "root": found.root, "model": args.model or "default",
                          "hits": [h.as_dict() for h in found.hits]}, indent=2, ensure_ascii=False))
        return 0
    _print_hits(found.hits, found.mode, offset, found.root)
    return 0


def _print_hits(hits, mode: str, offset: int, root: str) -> None:
    from indexer.loaders import printable
    from indexer.snippets import highlight

    if not hits:
        print("no results" + (" on this page" if offset else ""))
        return
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"{mode} search" + (f" in {root}" if root else "") + f"; score: {SCORE_MEANING[mode]}")
    for rank, hit in enumerate(hits, offset + 1):
        where = hit.relative_path + (f" (page {hit.metadata['page']})" if "page" in hit.metadata else "")
        shown = hit.title and hit.title != os.path.splitext(os.path.basename(hit.path))[0]  # not the file name again
        title = f"  {printable(hit.title)}" if shown else ""
        more = f"  (+{hit.chunks_matched - 1} more passages)" if hit.chunks_matched > 1 else ""
        print(f"{rank}. {bold}{printable(where)}{plain}{title}  [{hit.score:.4g}]{more}")
        print("   " + highlight(printable(hit.snippet), hit.highlights, bold, plain))



def collections_command(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    if not stats:
        print(f"no collections in {store.directory}")
    for info in stats:
        _print_stats(info)
    return 0


def _print_stats(info: dict) -> None:
    print(f"{info['name']}: {info['documents']} documents, {info['chunks']} chunks "
          f"({info['chunk_tokens']} tokens, overlap {info['chunk_overlap']})")
    for ix in info["indexes"]:
        print(f"  index: {ix['vectors']} vectors, {ix['built']} ({ix['index_type']}), dim {ix['dimension']}, "
              f"model {ix['model'] or 'default'} [{ix['fingerprint']}], instruction {ix['instruction']!r}")


def delete_command(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if args.paths:
            count = store.delete_documents(args.collection, args.paths)
            print(f"{args.collection}: deleted {count} document(s)")
            if count == 0:
                print("nothing matched; paths are matched exactly or as folders", file=sys.stderr)
                return 1
        else:
            info = store.drop(args.collection)
            print(f"deleted collection {args.collection} ({info['documents']} documents, "
                  f"{len(info['indexes'])} index(es))")
    return 0


def stats_command(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        stats = store.stats(args.collection)
        checks = []
        if args.check:
            for info in stats:
                reports = store.check(info["name"])
                if args.repair and not all(r.ok for r in reports):
                    reports = _repair(store, args, info["name"], reports)
                checks += [r.as_dict() for r in reports]
    if args.json:
        print(json.dumps({"collections": stats, "checks": checks}, indent=2))
    else:
        for info in stats:
            _print_stats(info)
        for check in checks:
            state = "consistent" if check["ok"] else (
                f"{check['vectors_without_rows']} vectors without rows, {check['rows_without_vectors']} rows "
                f"without vectors, {check['duplicated_ids']} duplicated ids"
                + (f", file: {check['file_problem']}" if check["file_problem"] else ""))
            print(f"check {check['collection']} [{check['fingerprint']}] {check['instruction']!r}: {state}"
                  + (" (repaired)" if check["repaired"] else ""))
    return 0 if all(c["ok"] or c["repaired"] for c in checks) else 1


def _repair(store, args: argparse.Namespace, name: str, reports):
    """Open each inconsistent index writable with its model: opening reconciles it."""
    repaired = []
    for report, ix in zip(reports, sorted(store.indexes(name), key=lambda ix: ix.id)):
        if report.ok:
            repaired.append(report)
            continue
        model_args = argparse.Namespace(**{**vars(args), "model": args.model or ix.model_name or None})
        model = load_model(model_args)
        if model.fingerprint != ix.fingerprint:
            print(f"skipping the index for {ix.fingerprint}: --model gives {model.fingerprint}", file=sys.stderr)
            repaired.append(report)
            continue
        with store.open(name, model, ix.instruction, writable=True) as collection:  # opening reconciles
            repaired.append(collection.open_report)
    return repaired
