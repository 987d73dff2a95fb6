"""A full disk: ``wardrobe ingest`` fails in one line naming it, and once space was freed the
catalog searches and ingests as before. A real full file system (a small tmpfs), so the test
needs the right to mount one and skips elsewhere."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.catalog import jpeg_bytes, photo_of, write_catalog


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _wardrobe(data: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--data-dir", str(data), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte. Unbuffered: a buffered file would raise "no space" again
    on closing, with the bytes the failed write left in its buffer."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while handle.write(b"\0" * 65536):
                pass
        except OSError:
            pass
    return filler


def test_a_full_disk_fails_in_one_line_and_recovers(small_disk: Path, tmp_path: Path) -> None:
    write_catalog(tmp_path / "catalog")
    source = ["--styles", str(tmp_path / "catalog" / "styles.csv"),
              "--images", str(tmp_path / "catalog" / "images")]  # fmt: skip
    data = small_disk / "data"
    assert _wardrobe(data, "ingest", *source, cwd=tmp_path).returncode == 0
    filler = _fill(small_disk)

    failed = _wardrobe(data, "ingest", "--reembed", *source, cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr
    assert "is full" in failed.stderr and failed.stderr.count("\n") == 1, failed.stderr

    filler.unlink()
    query = tmp_path / "query.jpg"
    query.write_bytes(jpeg_bytes(photo_of("Dresses", "Red")))
    search = _wardrobe(data, "search", "--json", str(query), cwd=tmp_path)
    assert search.returncode == 0 and '"results": [{' in search.stdout, search.stderr
    again = _wardrobe(data, "ingest", "--reembed", *source, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "24 items indexed: 24 embedded" in again.stdout
    stats = _wardrobe(data, "stats", cwd=tmp_path)
    assert "catalog items:  24" in stats.stdout and "index vectors:  24" in stats.stdout
