"""``wardrobe bench --synthetic N``: the vector index measured without a catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.cli import bench_synthetic
from bot.cli.bench_synthetic import clustered_vectors, exact_top
from bot.cli.main import main

pytestmark = pytest.mark.usefixtures("no_env_file")


def test_bench_synthetic_prints_a_table_per_scalar_type(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--data-dir", str(tmp_path), "bench", "--synthetic", "2000", "--dim", "32",
            "--dtypes", "f32,i8", "--queries", "50"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| f32") or
            line.startswith("| i8")]  # fmt: skip
    assert "| scalar type | search | build |" in out and len(rows) == 2
    f32 = [cell.strip() for cell in rows[0]]
    assert f32[1] == "exact" and float(f32[-1]) == 1.0  # exact f32 search is its own truth
    assert all(cell.endswith(" MB") for cell in (*f32[4:6], *[c.strip() for c in rows[1][4:6]]))


def test_bench_without_a_catalog_or_synthetic_size_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--data-dir", str(tmp_path), "bench"]) == 2
    assert "--synthetic" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "bench", "--synthetic", "10", "--dtypes", "f8"]) == 2
    assert "f8" in capsys.readouterr().err


def test_synthetic_vectors_are_clustered_unit_rows_fixed_by_the_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_synthetic, "_SCAN_ROWS", 700)  # the scan merges several blocks
    vectors, queries = clustered_vectors(3000, 24, seed=1, queries=40)
    again, _ = clustered_vectors(3000, 24, seed=1, queries=40)
    other, _ = clustered_vectors(3000, 24, seed=2, queries=40)
    np.testing.assert_array_equal(vectors, again)
    assert not np.array_equal(vectors, other)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    truth = exact_top(vectors, queries, 5)
    similarities = queries @ vectors.T
    np.testing.assert_array_equal(truth[:, 0], similarities.argmax(axis=1))
    assert np.all(np.diff(np.take_along_axis(similarities, truth, axis=1), axis=1) <= 0)
    assert similarities.max(axis=1).mean() > 0.5  # clustered: a query has close neighbours
