"""The demo collection: the Python standard library's own documentation, extracted at run time.

Every machine that runs this project has these texts, so nothing third-party is committed. Each
module becomes one Markdown file under home()/demo-docs/: its docstring, then its public functions
and classes with their signatures and the first paragraph of their docstrings. Well-known modules
come first, so the first indexed slice already answers everyday questions.

Two by-products, both from the same docstrings:
- labelled queries (home()/labelled-queries/python-docs.jsonl): for one function per module, its
  docstring summary is a query whose relevant document is the module's file; that summary is held
  out of the file, so a hit has to come from the rest of the module's text;
- training pairs (home()/demo-training/pairs.jsonl): other functions' summaries paired with their
  module's text, for the Training tab and the backbone swap's alignment.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import warnings
from pathlib import Path

from embedder.home import subdir

COLLECTION = "python-docs"
INSTRUCTION = "Given a question about Python programming, retrieve the standard library documentation that answers it"
MAX_CHARS = 6000  # per module file: keeps the whole collection to minutes of CPU encoding
EXAMPLE_QUERIES = [
    "read and write JSON files",
    "compare two sequences of lines and show the differences",
    "parse command line options and arguments",
    "compress files into a zip archive",
    "run a shell command and capture its output",
    "schedule coroutines concurrently",
]
# familiar modules first: the first slices indexed are the ones people ask about
MODULES = [
    "json", "os.path", "pathlib", "re", "datetime", "collections", "itertools", "functools", "subprocess",
    "argparse", "csv", "sqlite3", "logging", "random", "math", "statistics", "shutil", "tempfile", "glob",
    "zipfile", "tarfile", "gzip", "hashlib", "base64", "difflib", "textwrap", "string", "time", "calendar",
    "urllib.parse", "urllib.request", "http.client", "http.server", "socket", "threading", "multiprocessing",
    "concurrent.futures", "asyncio", "queue", "heapq", "bisect", "copy", "pickle", "shelve", "dataclasses",
    "enum", "typing", "abc", "contextlib", "inspect", "unittest", "doctest", "pprint", "traceback", "warnings",
    "decimal", "fractions", "uuid", "secrets", "hmac", "struct", "io", "codecs", "unicodedata", "locale",
    "gettext", "configparser", "tomllib", "xml.etree.ElementTree", "html", "html.parser", "email.message",
    "smtplib", "mimetypes", "ipaddress", "platform", "sys", "os", "signal", "select", "selectors", "mmap",
    "fnmatch", "filecmp", "stat", "zlib", "bz2", "lzma", "binascii", "array", "weakref", "types", "operator",
    "numbers", "cmath", "timeit", "cProfile", "pstats", "tracemalloc", "gc", "ast", "dis", "tokenize",
    "keyword", "importlib", "pkgutil", "zipimport", "runpy", "venv", "sysconfig", "shlex", "getpass",
    "curses", "readline", "webbrowser", "wsgiref", "xmlrpc.client", "ftplib", "imaplib", "poplib",
    "graphlib", "reprlib", "colorsys", "wave", "quopri", "zoneinfo", "sched", "atexit", "faulthandler",
    "pdb", "trace", "fileinput", "linecache", "netrc", "plistlib", "ssl", "optparse", "getopt",
]


def demo_dir() -> Path:
    return subdir("demo-docs")


def labelled_queries_path(collection: str = COLLECTION) -> Path:
    return subdir("labelled-queries") / f"{collection}.jsonl"


def training_pairs_path() -> Path:
    return subdir("demo-training") / "pairs.jsonl"


def _summary(obj) -> str:
    """The first paragraph of a docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _signature(name: str, obj) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _members(module) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    found = []
    for name in names:
        obj = getattr(module, name, None)
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
            continue
        home = getattr(obj, "__module__", "") or ""
        if home.lstrip("_").split(".")[0] != module.__name__.lstrip("_").split(".")[0]:
            continue  # re-exported from elsewhere
        found.append((name, obj))
    return found


def module_document(name: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """(markdown, held-out query, training pairs as (query, function name)) for one module, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            module = importlib.import_module(name)
        except Exception:  # not built into this Python (curses, readline, ...): leave it out
            return None
    intro = inspect.getdoc(module) or ""
    if len(intro) > MAX_CHARS // 2:  # long tutorials in a docstring: keep room for the functions
        intro = intro[:MAX_CHARS // 2].rsplit("\n\n", 1)[0]
    members = [(n, o, _summary(o)) for n, o in _members(module)]
    described = [(n, o, s) for n, o, s in members if len(s) >= 30]
    held_out = described[len(described) // 2] if len(described) >= 3 else None
    lines = [f"# {name}", "", intro.strip(), ""]
    pairs = []
    for member_name, obj, summary in members:
        if held_out is not None and member_name == held_out[0]:
            lines.append(f"- `{_signature(member_name, obj)}`")  # its summary is the labelled query
            continue
        lines.append(f"- `{_signature(member_name, obj)}`: {summary}" if summary else f"- `{member_name}`")
        if len(summary) >= 30:
            pairs.append((summary, member_name))
    text = "\n".join(lines).strip() + "\n"
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit("\n", 1)[0] + "\n"
    if len(text) < 200:
        return None  # too little to be worth a document
    return text, held_out[2] if held_out else "", pairs


def build_demo_docs(directory: Path | None = None, limit: int | None = None, log=print) -> list[Path]:
    """Write the demo documents (unchanged files are left alone); their paths in indexing order."""
    directory = directory or demo_dir()
    directory.mkdir(parents=True, exist_ok=True)
    written, queries, pairs = [], [], []
    for name in MODULES[:limit]:
        document = module_document(name)
        if document is None:
            continue
        text, query, module_pairs = document
        path = directory / f"{name}.md"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path.resolve())
        if query:
            queries.append({"query": query, "relevant": [str(path.resolve())]})
        pairs += [{"query": q, "positive": text, "task": "python-docs"} for q, _ in module_pairs[:4]]
    _write_lines(labelled_queries_path(), queries)
    _write_lines(training_pairs_path(), [{**p, "instruction": INSTRUCTION} for p in pairs])
    log(f"demo: {len(written)} standard-library modules of Python {sys.version.split()[0]} written to {directory}")
    return written


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)
