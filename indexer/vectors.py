"""A FAISS index whose ids are chunk row ids: normalised vectors, inner product, atomic saves.

Kinds, after the FAISS guidelines ("Guidelines to choose an index"):
- flat: exact search; the default below EXACT_THRESHOLD vectors.
- ivf: IndexIVFFlat with nlist ~ 4*sqrt(n) lists, trained on a sample; the default above it.
- ivfpq: IndexIVFPQ, m bytes per vector instead of 4d (product quantisation, 8-bit codes): the default once
  IVF-Flat's vectors would pass the memory budget (PROMPTEMBEDDER_INDEX_MEMORY_GB, default half the RAM).
  Lossy: its scores and the vectors read back from it are approximations (see docs/design.md).
- hnsw: IndexHNSWFlat (an option: fast and accurate, more memory, no in-place removal, so removals
  rebuild the graph once at save time).
"auto" picks flat, ivf or ivfpq from the size and rebuilds when the collection outgrows its index.
The GPU is used for unfiltered searches when faiss was built with GPU support and one is present.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

INDEX_TYPES = ("auto", "flat", "ivf", "ivfpq", "hnsw")
IVF_KINDS = ("ivf", "ivfpq")
EXACT_THRESHOLD = 50_000  # below this, exact search is fast enough (~10 ms/query at d=896 on 2 cores)
MIN_POINTS_PER_LIST = 39  # FAISS warns below this many training points per centroid
PQ_MIN_TRAIN = MIN_POINTS_PER_LIST * 256  # each sub-quantiser has 256 centroids (8-bit codes)
PQ_MAX_M = 64  # bytes per vector: 64 divides 576 (SmolLM2) and 896 (Qwen2.5)
EXACT_FILTER_LIMIT = 20_000  # a filter leaving fewer candidates is searched exactly (graphs and lists miss them)
DEFAULTS = {"nprobe": None, "nlist": None, "M": 32, "efConstruction": 80, "efSearch": 64, "pq_m": None}
# what FAISS accepts without aborting or allocating without bound (M 0 aborts natively; a negative M
# allocated ~24 GB): checked before a parameter is stored, since a stored one is used by every later run
PARAM_RANGES = {"nlist": (1, 1 << 20), "nprobe": (1, 1 << 20), "M": (2, 256), "efConstruction": (1, 1 << 16),
                "efSearch": (1, 1 << 16), "pq_m": (1, 1024)}
CLI_NAMES = {"nlist": "--nlist", "nprobe": "--nprobe", "M": "--hnsw-m", "efSearch": "--ef-search",
             "efConstruction": "efConstruction", "pq_m": "--pq-m"}


def tunable(params: dict) -> dict:
    """The user-set FAISS parameters among an index row's params (which also keep bookkeeping such as "built")."""
    return {k: v for k, v in params.items() if k in PARAM_RANGES}


def check_params(params: dict) -> dict:
    """The index parameters, each a whole number in its range, or a ValueError naming the bad one."""
    for name, value in params.items():
        if name not in PARAM_RANGES:
            raise ValueError(f"unknown index parameter {name!r} (known: {', '.join(PARAM_RANGES)})")
        low, high = PARAM_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{CLI_NAMES[name]} must be a whole number from {low} to {high}, not {value!r}")
    return params


def _faiss():
    import faiss

    return faiss


def ideal_nlist(n: int) -> int:
    """4*sqrt(n) rounded to a power of two, at least 16."""
    return max(16, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n)))))


def default_nprobe(nlist: int) -> int:
    return max(8, nlist // 16)


def memory_budget() -> float:
    """Bytes the vectors of one IVF-Flat index may take before auto moves to IVF-PQ."""
    configured = os.environ.get("PROMPTEMBEDDER_INDEX_MEMORY_GB")
    if configured:
        return float(configured) * 1e9
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2


def pq_subquantizers(dimension: int, params: dict) -> int:
    """m, the bytes per vector: the user's (it must divide the dimension), else the largest divisor <= 64."""
    m = params.get("pq_m")
    if m:
        if dimension % m:
            raise ValueError(f"--pq-m {m} does not divide the vectors' dimension {dimension}")
        return int(m)
    return max(m for m in range(1, min(PQ_MAX_M, dimension) + 1) if dimension % m == 0)


def desired_kind(requested: str, n: int, params: dict, dimension: int = 0) -> tuple[str, int | None]:
    """(kind, nlist) an index of n vectors of this dimension should be, given what the user asked for."""
    if requested not in INDEX_TYPES:
        raise ValueError(f"index type must be one of {', '.join(INDEX_TYPES)}, not {requested!r}")
    kind = requested
    if requested == "auto":
        kind = "flat" if n < EXACT_THRESHOLD else "ivfpq" if n * (4 * dimension + 8) > memory_budget() else "ivf"
    if kind not in IVF_KINDS:
        return kind, None
    nlist = int(params.get("nlist") or ideal_nlist(n))
    if n < MIN_POINTS_PER_LIST * nlist:
        return "flat", None  # too few vectors to train the lists; exact search is fast at this size anyway
    if kind == "ivfpq" and n < PQ_MIN_TRAIN:
        return "ivf", nlist  # too few to train the codebooks
    return kind, nlist


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.all(np.abs(norms - 1.0) < 1e-4):
        return vectors  # already unit length (the embedder's output): no copy, which matters at 1M x 896
    return vectors / np.maximum(norms, 1e-12)


class VectorIndex:
    """The FAISS index of one (collection, instruction, model), held in memory and saved atomically."""

    def __init__(self, index, kind: str, dimension: int, params: dict | None = None):
        self.index, self.kind, self.dimension = index, kind, dimension
        self.params = {**DEFAULTS, **(params or {})}
        self._pending_removals: set[int] = set()  # hnsw: applied by one rebuild at save time
        self._gpu = None
        self.file_state: tuple | None = None

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def empty(cls, dimension: int, kind: str = "flat", params: dict | None = None) -> "VectorIndex":
        faiss = _faiss()
        params = {**DEFAULTS, **(params or {})}
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dimension, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = int(params["efConstruction"])
            index = faiss.IndexIDMap2(inner)
        else:
            raise ValueError(f"an empty index can be flat or hnsw, not {kind!r}")
        return cls(index, kind, dimension, params)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, kind: str, params: dict | None = None,
              nlist: int | None = None, seed: int = 0) -> "VectorIndex":
        """A new index over the given vectors; ivf and ivfpq are trained on a random sample of them."""
        faiss = _faiss()
        dimension = vectors.shape[1]
        if kind not in IVF_KINDS:
            built = cls.empty(dimension, kind, params)
            built.add(ids, vectors)
            return built
        nlist = nlist or ideal_nlist(len(vectors))
        quantizer = faiss.IndexFlatIP(dimension)
        if kind == "ivfpq":
            m = pq_subquantizers(dimension, params or {})
            index = faiss.IndexIVFPQ(quantizer, dimension, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            index.pq.cp.niter = 10
        else:
            index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.cp.niter = 10  # k-means converges early for retrieval purposes; training is the cost on a CPU
        sample_size = min(len(vectors), max(50 * nlist, PQ_MIN_TRAIN if kind == "ivfpq" else 0))
        sample = vectors[np.random.default_rng(seed).choice(len(vectors), sample_size, replace=False)]
        index.train(normalize(sample))  # faiss keeps the quantizer referenced
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct by id, for exact filtered search
        built = cls(index, kind, dimension, params)
        built.add(ids, vectors)
        return built

    @classmethod
    def load(cls, path: Path, params: dict | None = None) -> "VectorIndex":
        faiss = _faiss()
        index = faiss.read_index(str(path))
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
        if isinstance(inner, faiss.IndexHNSW):
            kind = "hnsw"
        elif isinstance(inner, faiss.IndexIVF):
            # read_index already returns the concrete type (downcasting again would drop ownership)
            kind = "ivfpq" if isinstance(inner, faiss.IndexIVFPQ) else "ivf"
            if index.direct_map.type != faiss.DirectMap.Hashtable:
                index.set_direct_map_type(faiss.DirectMap.Hashtable)
        else:
            kind = "flat"
        loaded = cls(index, kind, index.d, params)
        loaded.file_state = _file_state(path)
        return loaded

    # ----- contents ---------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal) - len(self._pending_removals)

    @property
    def nlist(self) -> int | None:
        return int(self.index.nlist) if self.kind in IVF_KINDS else None

    def ids(self) -> np.ndarray:
        """Every id stored (duplicates included, so a check can see them), pending removals excluded."""
        faiss = _faiss()
        if self.kind in IVF_KINDS:
            lists = self.index.invlists
            parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                     for i in range(self.index.nlist) if lists.list_size(i)]
            ids = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        else:
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        if self._pending_removals:
            ids = ids[~np.isin(ids, np.fromiter(self._pending_removals, dtype=np.int64))]
        return ids

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored, pending removals excluded; ivfpq's are decoded approximations."""
        faiss = _faiss()
        if self.kind == "ivfpq":
            ids = self.ids()
            vectors = self.index.reconstruct_batch(ids) if len(ids) else np.empty((0, self.dimension), np.float32)
        elif self.kind == "ivf":
            lists, d = self.index.invlists, self.dimension
            id_parts, vec_parts = [], []
            for i in range(self.index.nlist):
                size = lists.list_size(i)
                if size:
                    id_parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).copy())
                    codes = faiss.rev_swig_ptr(lists.get_codes(i), size * d * 4).copy()
                    vec_parts.append(codes.view(np.float32).reshape(size, d))
            ids = np.concatenate(id_parts) if id_parts else np.empty(0, np.int64)
            vectors = np.concatenate(vec_parts) if vec_parts else np.empty((0, d), np.float32)
        else:
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            vectors = self.index.index.reconstruct_n(0, self.index.ntotal) if len(ids) else \
                np.empty((0, self.dimension), np.float32)
        if self._pending_removals:
            keep = ~np.isin(ids, np.fromiter(self._pending_removals, dtype=np.int64))
            ids, vectors = ids[keep], vectors[keep]
        return ids, vectors

    # ----- changes ----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.dimension}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._pending_removals.difference_update(ids.tolist())
        self.index.add_with_ids(normalize(vectors), ids)
        self._gpu = None

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == "hnsw":
            present = np.intersect1d(ids, self.ids())
            self._pending_removals.update(present.tolist())
        else:
            self.index.remove_ids(ids)
        self._gpu = None

    def rebuilt(self, kind: str, nlist: int | None = None) -> "VectorIndex":
        ids, vectors = self.vectors()
        if kind in IVF_KINDS and len(ids) < (nlist or 1):
            kind = "flat"
        return VectorIndex.build(ids, vectors, kind, self.params, nlist)

    # ----- search -----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (nq, k); id -1 where fewer than k vectors qualify."""
        faiss = _faiss()
        queries = normalize(np.atleast_2d(queries))
        k = max(1, min(k, max(1, self.index.ntotal)))
        selector = None
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if self._pending_removals:
                allowed = np.setdiff1d(allowed, np.fromiter(self._pending_removals, dtype=np.int64))
            if len(allowed) <= EXACT_FILTER_LIMIT:
                return self._search_exact(queries, k, allowed)
            selector = faiss.IDSelectorBatch(allowed)
        elif self._pending_removals:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self._pending_removals, dtype=np.int64)))
        if self.kind in IVF_KINDS:
            nprobe = int(self.params.get("nprobe") or default_nprobe(self.nlist))
            search_params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.nlist), sel=selector)
        elif self.kind == "hnsw":
            search_params = faiss.SearchParametersHNSW(efSearch=max(int(self.params["efSearch"]), k), sel=selector)
        else:
            search_params = faiss.SearchParameters(sel=selector) if selector is not None else None
        if selector is None:
            gpu = self._gpu_index()
            if gpu is not None:
                return gpu.search(queries, k)
        return self.index.search(queries, k, params=search_params)

    def _search_exact(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over the allowed ids that are stored: exact whatever the index type."""
        allowed = np.intersect1d(allowed, self.ids())
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        if len(allowed) == 0:
            return scores, ids
        vectors = self.index.reconstruct_batch(allowed)
        similarity = queries @ vectors.T
        take = min(k, len(allowed))
        top = np.argsort(-similarity, axis=1)[:, :take]
        scores[:, :take] = np.take_along_axis(similarity, top, axis=1)
        ids[:, :take] = allowed[top]
        return scores, ids

    def _gpu_index(self):
        """A GPU copy for unfiltered flat/ivf searches when faiss-gpu and a GPU are present, else None."""
        faiss = _faiss()
        if self.kind == "hnsw" or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            return None
        if self._gpu is None:
            try:
                resources = faiss.StandardGpuResources()
                self._gpu = faiss.index_cpu_to_gpu(resources, 0, self.index)
                if self.kind in IVF_KINDS:
                    self._gpu.nprobe = int(self.params.get("nprobe") or default_nprobe(self.nlist))
                self._gpu.resources_ref = resources  # must outlive the GPU index
            except RuntimeError:  # a type the GPU cloner does not know: stay on the CPU
                self._gpu = None
                return None
        return self._gpu

    # ----- persistence ------------------------------------------------------------------------
    def apply_pending(self) -> None:
        """hnsw cannot remove in place: rebuild the graph once without the removed vectors."""
        if self._pending_removals:
            fresh = self.rebuilt("hnsw")
            self.index, self._pending_removals, self._gpu = fresh.index, set(), None

    def save(self, path: Path) -> None:
        """Write aside, fsync, atomic rename, fsync the directory: the file is always whole."""
        faiss = _faiss()
        self.apply_pending()
        path = Path(path)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        os.chmod(tmp, 0o600)  # vectors of the user's text: theirs alone
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.file_state = _file_state(path)

    def changed_on_disk(self, path: Path) -> bool:
        return _file_state(path) != self.file_state


def _file_state(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size
