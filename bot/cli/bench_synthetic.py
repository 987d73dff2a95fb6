"""``wardrobe bench --synthetic N``: what the vector index costs at N items, with no images.

Clustered unit vectors shaped like the shipped model's embeddings stand in for a catalog
(deterministic by seed); shoppers' queries are further items of the same look-alike groups,
not catalog items, and their true top 5 comes from an exact float32 scan. Each scalar type's index
is built and saved here, then served by a fresh process that only maps the file and searches
it, so the memory reported is what serving costs, not what building did.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from bot.cli.common import CliError
from bot.settings import Settings
from storage.vector_index import (
    CONNECTIVITY,
    DTYPES,
    EXACT_SEARCH_FLOATS,
    EXPANSION_ADD,
    EXPANSION_SEARCH,
    USEARCH_VERSION,
    VectorIndex,
)

# The synthetic catalog's shape, fitted to the shipped model's embeddings of fashion-dev items
# (neighbour similarities and spectrum compared in docs/BENCHMARKS.md, "a million items").
_DECAY = 0.65  # the i-th of the dim noise directions has scale i ** -_DECAY
_GROUP_SPREAD = 0.8  # look-alike groups around their category centre
_ITEM_SPREAD = 0.65  # items around their group
_GROUP_SIZE = 4  # items per look-alike group, on average
_CHUNK = 100_000  # rows generated with one random stream
_SCAN_ROWS = 20_000  # rows per matrix product of the exact scan (queries × rows floats)
_TOP = 5


@dataclass(frozen=True)
class SyntheticResult:
    dtype: str
    searched_exactly: bool
    build_seconds: float
    file_bytes: int
    served_rss_bytes: int
    load_seconds: float
    search_ms: list[float]
    recall: float


def clustered_vectors(n: int, dim: int, seed: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` catalog vectors and ``queries`` query vectors, float32 rows of norm 1, the same for
    the same arguments: look-alike groups of about four items around ``sqrt(n)`` category
    centres, with noise concentrated in a few dozen directions, like real embeddings."""
    clusters, groups = max(8, round(n**0.5)), max(1, n // _GROUP_SIZE)
    basis_seed, centre_seed, group_seed, query_seed, *chunk_seeds = np.random.SeedSequence(
        seed
    ).spawn(4 + -(-n // _CHUNK))
    basis, _ = np.linalg.qr(np.random.default_rng(basis_seed).standard_normal((dim, dim)))
    scale = (np.arange(dim) + 1.0) ** -_DECAY
    directions = (scale[:, None] / np.linalg.norm(scale) * basis.T).astype(np.float32)

    def noise(rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.standard_normal((count, dim), np.float32) @ directions

    def unit(rows: np.ndarray) -> np.ndarray:
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    centres = unit(noise(np.random.default_rng(centre_seed), clusters))
    rng = np.random.default_rng(group_seed)
    looks = unit(centres[rng.integers(clusters, size=groups)] + _GROUP_SPREAD * noise(rng, groups))

    def items(count: int, stream: np.random.SeedSequence) -> np.ndarray:
        rng = np.random.default_rng(stream)
        return unit(looks[rng.integers(groups, size=count)] + _ITEM_SPREAD * noise(rng, count))

    vectors = np.empty((n, dim), dtype=np.float32)
    for chunk, stream in enumerate(chunk_seeds):
        start = chunk * _CHUNK
        vectors[start : start + _CHUNK] = items(min(_CHUNK, n - start), stream)
    return vectors, items(queries, query_seed)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of each query's ``k`` most similar vectors (q, k), by a full float32 scan."""
    k = min(k, len(vectors))
    best = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), _SCAN_ROWS):
        similarities = queries @ vectors[start : start + _SCAN_ROWS].T
        top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        merged = np.concatenate([best, np.take_along_axis(similarities, top, axis=1)], axis=1)
        merged_rows = np.concatenate([rows, top + start], axis=1)
        order = np.argsort(-merged, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(merged, order, axis=1)
        rows = np.take_along_axis(merged_rows, order, axis=1)
    return rows


def measure(
    n: int, *, dim: int, seed: int, dtypes: list[str], queries: int, pool: int
) -> list[SyntheticResult]:
    """Build, save and serve an index of ``n`` synthetic vectors for each of ``dtypes``."""
    vectors, query_vectors = clustered_vectors(n, dim, seed, queries)
    keys = np.arange(1, n + 1, dtype=np.uint64)
    truth = keys[exact_top(vectors, query_vectors, _TOP)]
    results = []
    with tempfile.TemporaryDirectory(prefix="wardrobe-bench-") as scratch:
        for dtype in dtypes:
            path = Path(scratch) / f"{dtype}.usearch"
            started = time.perf_counter()
            index = VectorIndex.build(keys, vectors, dtype=dtype)
            build_seconds = time.perf_counter() - started
            searched_exactly = index.searched_exactly
            index.save(path)
            del index  # its memory back before the next type is built
            served = _serve_in_fresh_process(path, query_vectors, pool)
            hits = sum(
                len(set(found[:_TOP]) & set(expected))
                for found, expected in zip(served.found, truth.tolist(), strict=True)
            )
            results.append(
                SyntheticResult(
                    dtype=dtype,
                    searched_exactly=searched_exactly,
                    build_seconds=build_seconds,
                    file_bytes=path.stat().st_size,
                    served_rss_bytes=served.rss_bytes,
                    load_seconds=served.load_seconds,
                    search_ms=served.search_ms,
                    recall=hits / truth.size,
                )
            )
            path.unlink()
    return results


@dataclass(frozen=True)
class _Served:
    load_seconds: float
    rss_bytes: int
    search_ms: list[float]
    found: list[list[int]]


def _serve_in_fresh_process(path: Path, queries: np.ndarray, pool: int) -> _Served:
    """Map and search ``path`` in a new interpreter, whose memory holds nothing but that."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(path, queries, pool, sender))
    process.start()
    sender.close()
    try:
        served = receiver.recv()
    except EOFError:
        served = None
    process.join()
    if served is None:
        raise CliError(f"the process serving {path.name} failed (exit code {process.exitcode})")
    return served


def _serve(path: Path, queries: np.ndarray, pool: int, sender: Connection) -> None:
    before = _rss_bytes()
    started = time.perf_counter()
    index = VectorIndex.load(path)
    load_seconds = time.perf_counter() - started
    search_ms, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = index.search(query, pool)
        search_ms.append((time.perf_counter() - started) * 1000)
        found.append([key for key, _ in hits[:_TOP]])
    sender.send(_Served(load_seconds, _rss_bytes() - before, search_ms, found))
    sender.close()


def _rss_bytes() -> int:
    """Resident memory now, mapped file pages included (Linux); elsewhere the peak so far."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def run_synthetic(args: argparse.Namespace, settings: Settings) -> int:
    """``wardrobe bench --synthetic N [--dim D] [--dtypes f32,f16]``: print the Markdown table."""
    dtypes = [name.strip() for name in args.dtypes.split(",") if name.strip()]
    if unknown := sorted(set(dtypes) - set(DTYPES)):
        raise CliError(f"--dtypes: unknown {', '.join(unknown)} (choose from {', '.join(DTYPES)})")
    queries = args.queries or 1000
    if args.synthetic < 1 or queries < 1 or not dtypes:
        raise CliError("--synthetic, --queries and --dtypes need at least one each")
    dim = args.dim or _served_dim(settings)
    if dim < 2:
        raise CliError("--dim must be at least 2")
    pool = settings.ranking.pool
    load = os.getloadavg()[0]
    results = measure(
        args.synthetic, dim=dim, seed=args.seed, dtypes=dtypes, queries=queries, pool=pool
    )
    print(
        f"\n`wardrobe bench --synthetic {args.synthetic}` on {platform.node()} "
        f"({os.cpu_count()} CPU cores, load average {load:.1f} at the start, usearch "
        f"{USEARCH_VERSION}), {date.today().isoformat()}: {dim}-d, "
        f"{max(8, round(args.synthetic**0.5))} clusters, seed {args.seed}, {queries} queries, "
        f"connectivity {CONNECTIVITY}, expansion {EXPANSION_ADD} on add and {EXPANSION_SEARCH} "
        f"on search, exact search up to {EXACT_SEARCH_FLOATS:,} stored floats\n"
    )
    print(
        f"| scalar type | search | build | vectors/s | file | served RSS | load "
        f"| pool-of-{pool} search p50 / p99 | recall@{_TOP} |"
    )
    print("|---" * 9 + "|")
    for result in results:
        ms = sorted(result.search_ms)
        print(
            f"| {result.dtype} | {'exact' if result.searched_exactly else 'HNSW'} "
            f"| {result.build_seconds:.1f} s | {args.synthetic / result.build_seconds:,.0f} "
            f"| {_mb(result.file_bytes)} | {_mb(result.served_rss_bytes)} "
            f"| {result.load_seconds * 1000:.1f} ms "
            f"| {statistics.median(ms):.2f} / {_percentile(ms, 0.99):.2f} ms "
            f"| {result.recall:.4f} |"
        )
    return 0


def _served_dim(settings: Settings) -> int:
    from bot.service import make_embedder

    embedder = make_embedder(settings)
    embedder.close()
    return embedder.dim


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"
