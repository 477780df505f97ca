"""`promptembedder bench BENCHMARK`: reproducible measurements, each a sub-command.

Each module listed in BENCHMARKS has a register_bench(subparsers) adding its sub-command; adding a
benchmark is one line here. Modules are imported when the parser is built, so they must keep their
heavy imports inside their handlers.
"""
from __future__ import annotations

import importlib

BENCHMARKS = [
    "indexer.bench",  # search: FAISS index types and storage ingestion (issue 5)
    "indexer.bench_modes",  # modes: search latency per mode, encoding included (issue 13)
    "training.bench_commands",  # train, convergence: training cost and convergence (issue 3)
]


def register(commands) -> None:
    p = commands.add_parser("bench", help="benchmarks (search, ...)",
                            description="Reproducible benchmarks; results print and can be written as JSON.")
    benchmarks = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for module in BENCHMARKS:
        importlib.import_module(module).register_bench(benchmarks)

