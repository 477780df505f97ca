"""`promptembedder bench BENCHMARK`: reproducible measurements, each a sub-command.

The parsers live here; each benchmark's work lives beside what it measures (indexer/bench.py,
indexer/bench_modes.py, training/bench.py via bench_training.py). Those indexer modules import only the
standard library at the top, so building this parser stays instant.
"""
from __future__ import annotations

import argparse

from indexer import bench as search_bench
from indexer import bench_modes, bench_ray

from . import bench_training


def register(commands) -> None:
    p = commands.add_parser("bench", help="benchmarks (search, modes, instructions, ray, train, convergence, levers)",
                            description="Reproducible benchmarks; results print and can be written as JSON.")
    benchmarks = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    _register_search(benchmarks)
    _register_modes(benchmarks)
    _register_instructions(benchmarks)
    _register_ray(benchmarks)
    bench_training.register(benchmarks)


# ----- indexer: FAISS index types and ingestion (issue 5), search modes and instructions (issue 13) ------------
def _register_search(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "search", help="FAISS index types and storage ingestion on synthetic vectors",
        description=search_bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=search_bench.DEFAULT_SIZES, help=f"vector counts, comma-separated (default {search_bench.DEFAULT_SIZES})")
    p.add_argument("--dim", type=int, default=896, help="dimension (default 896, Qwen2.5-0.5B's)")
    p.add_argument("--types", default=search_bench.DEFAULT_TYPES, help=f"index types (default {search_bench.DEFAULT_TYPES})")
    p.add_argument("--queries", type=int, default=1000, help="batch queries for QPS and recall (default 1000)")
    p.add_argument("--single", type=int, default=200, help="queries timed one at a time (default 200)")
    p.add_argument("-k", type=int, default=10, help="recall@k (default 10)")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default: the indexer's choice, ~4*sqrt(n))")
    p.add_argument("--nprobe", default="8,32", help="IVF lists probed, comma-separated (default 8,32)")
    p.add_argument("--pq-m", type=int, default=None, help="IVF-PQ bytes per vector (default: the indexer's, <= 64)")
    p.add_argument("--hnsw-m", type=int, default=32, help="HNSW M (default 32)")
    p.add_argument("--ef-construction", type=int, default=80, help="HNSW efConstruction (default 80)")
    p.add_argument("--ef-search", default="64,128", help="HNSW efSearch, comma-separated (default 64,128)")
    p.add_argument("--data", choices=["clustered", "uniform"], default="clustered")
    p.add_argument("--budget-s", type=float, default=300, help="skip a build estimated to take longer (default 300)")
    p.add_argument("--ingest-rows", type=int, default=100_000, help="rows for the ingestion test (0: skip)")
    p.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.set_defaults(handler=search_bench.bench_search)


def _register_modes(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "modes", help="search latency per mode (semantic, keyword, hybrid) on a synthetic collection",
        description=bench_modes.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=100_000, help="chunks in the collection (default 100000)")
    p.add_argument("--queries", type=int, default=100, help="single queries timed per mode (default 100)")
    p.add_argument("--model", default="default", help="the model that embeds the queries (default: the shipped one)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("-k", type=int, default=10, help="hits per search (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.set_defaults(handler=bench_modes.bench_modes)


def _register_instructions(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "instructions", help="indexing time for k document instructions at once, relative to one",
        description="Index the same files into a fresh collection with k = 1, 2, 4 (query, document) "
                    "instruction pairs in one run (`index --instruction Q1 --document-instruction D1 ...`): "
                    "each text is read by the Embedding LLM once, each instruction adds its K soft positions. "
                    "Reports wall time per k and its ratio to k = 1.")
    p.add_argument("folder", help="files to index (e.g. the demo documents)")
    p.add_argument("--model", default="default", help="the model (default: the shipped one)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--ks", default="1,2,4", help="instruction counts, comma-separated (default 1,2,4)")
    p.add_argument("--limit", type=int, default=20, help="files taken from the folder, sorted (default 20)")
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.set_defaults(handler=bench_modes.bench_instructions)


def _register_ray(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "ray", help="indexing with --ray (a local cluster) against the single process: overhead, chunks/s per worker",
        description=bench_ray.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", default=None, help="files to index (e.g. the demo documents)")
    p.add_argument("--chunks", type=int, default=10_000, help="synthetic one-chunk rows (default 10000; 0: none)")
    p.add_argument("--rows-per-file", type=int, default=100, help="synthetic rows per JSONL file (default 100)")
    p.add_argument("--model", default="default", help="the model (default: the shipped one)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--workers", type=int, default=2, help="embedding actors (default 2)")
    p.add_argument("--cpus", type=int, default=None, help="the local cluster's CPUs (default: the machine's)")
    p.add_argument("--project-workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64],
                   help="worker counts for the on-paper time to index 10M chunks (default 1,8,64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.set_defaults(handler=bench_ray.bench_ray)
