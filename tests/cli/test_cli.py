"""The ``wardrobe`` CLI, including the ``search --json`` contract other tools rely on."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.cli.main import main
from bot.cli.sheet import CELL, LINE_HEIGHT, PADDING, TEXT_LINES
from storage.catalog import Catalog
from storage.models import Vote
from tests.support.catalog import jpeg_bytes, photo_of, write_catalog
from tests.support.no_torch import TORCH_IMPORTED, torchless_pythonpath


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("cli")
    products = write_catalog(root / "catalog")
    data = root / "data"
    code = main(
        ["--data-dir", str(data), "ingest", "--styles", str(root / "catalog" / "styles.csv"),
         "--images", str(root / "catalog" / "images")]
    )  # fmt: skip
    assert code == 0
    return {"root": root, "data": data, "products": products}


pytestmark = pytest.mark.usefixtures("no_env_file")


def test_search_json_contract(ingested: dict, capsys: pytest.CaptureFixture) -> None:
    root = ingested["root"]
    red = root / "red-dress.jpg"
    red.write_bytes(jpeg_bytes(photo_of("Dresses", "Red")))
    shoe = root / "shoe.png"
    photo_of("Casual Shoes", "Black").save(shoe)
    capsys.readouterr()
    code = main(["--data-dir", str(ingested["data"]), "search", "--json", "--top", "3",
                 str(red), str(shoe)])  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["query"] == str(red) and second["query"] == str(shoe)
    ids = {product.id: product for product in ingested["products"]}
    for record in (first, second):
        results = record["results"]
        assert len(results) == 3
        assert all(isinstance(result["id"], str) and result["id"] in ids for result in results)
        assert all(isinstance(result["score"], float) for result in results)
        assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
        assert {"name", "article_type", "base_colour"} <= set(results[0])
        assert "image_path" not in results[0]
    assert ids[first["results"][0]["id"]].article_type == "Dresses"
    assert ids[second["results"][0]["id"]].article_type == "Casual Shoes"


def test_search_never_imports_torch(ingested: dict, tmp_path: Path) -> None:
    image = tmp_path / "dress.jpg"
    image.write_bytes(jpeg_bytes(photo_of("Dresses", "Red")))
    env = {**os.environ, "PYTHONPATH": torchless_pythonpath(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--data-dir", str(ingested["data"]), "search",
         "--json", str(image)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TORCH_IMPORTED not in done.stderr
    (record,) = (json.loads(line) for line in done.stdout.strip().splitlines())
    assert len(record["results"]) == 5


def test_search_reports_unreadable_images_and_continues(
    ingested: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(photo_of("Tshirts", "Green")))
    capsys.readouterr()
    code = main(["--data-dir", str(ingested["data"]), "search", "--json",
                 str(bad), str(tmp_path / "missing.jpg"), str(good)])  # fmt: skip
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [bool(record["results"]) for record in records] == [False, False, True]
    assert "error" in records[0] and "error" in records[1] and "error" not in records[2]


def test_search_on_an_empty_catalog_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(jpeg_bytes(photo_of("Tshirts", "Red")))
    code = main(["--data-dir", str(tmp_path / "empty"), "search", str(image)])
    assert code == 2
    assert "wardrobe ingest" in capsys.readouterr().err


def test_ingest_without_a_source_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--data-dir", str(tmp_path), "ingest"]) == 2
    assert "--styles" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "ingest", "--styles", "nope.csv",
                 "--images", str(tmp_path)]) == 2  # fmt: skip
    assert "not found" in capsys.readouterr().err


def test_run_without_a_token_explains_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main(["--data-dir", str(tmp_path), "run"]) == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_stats_reports_the_ingested_catalog(ingested: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["--data-dir", str(ingested["data"]), "stats"]) == 0
    out = capsys.readouterr().out
    count = len(ingested["products"])
    assert f"catalog items:  {count}" in out and f"index vectors:  {count}" in out
    models = dict(line.split(":", 1) for line in out.splitlines() if "model:" in line)
    assert models["catalog model"].strip() == models["bot model"].strip() != "-"
    assert "runtime:        onnx" in out


def test_a_catalog_from_a_newer_version_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "stats"]) == 0
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        db.execute("UPDATE meta SET value = '999' WHERE name = 'schema_version'")
    capsys.readouterr()
    assert main(["--data-dir", str(data), "stats"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wardrobe: error:") and "newer version" in err and "\n" not in err


def test_bench_measures_each_runtime_in_its_own_process(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    write_catalog(tmp_path / "catalog")
    catalog = tmp_path / "catalog"
    code = main(["--data-dir", str(tmp_path / "data"), "bench", "--styles",
                 str(catalog / "styles.csv"), "--images", str(catalog / "images"),
                 "--queries", "3", "--runtimes", "onnx"])  # fmt: skip
    table = capsys.readouterr().out
    assert code == 0
    rows = dict(line.strip("|").split("|")[:2] for line in table.splitlines() if "|" in line)
    rows = {name.strip(): value.strip() for name, value in rows.items()}
    assert rows["torch imported"] == "no"
    assert rows["catalog items indexed"].startswith("24 ")
    assert float(rows["query p50 (ms)"]) > 0 and float(rows["ingest items/s"]) > 0
    assert not (tmp_path / "data" / "catalog.sqlite3").exists(), "a scratch catalog only"


def test_search_sheet_draws_each_query_with_its_results(
    ingested: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dress, bad = tmp_path / "dress.jpg", tmp_path / "bad.jpg"
    dress.write_bytes(jpeg_bytes(photo_of("Dresses", "Red")))
    bad.write_bytes(b"nope")
    out = tmp_path / "sheet.png"
    capsys.readouterr()
    code = main(["--data-dir", str(ingested["data"]), "search", "--top", "3", "--sheet",
                 str(out), str(dress), str(bad)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1, "a failed query fails the search, as without --sheet"
    assert f"contact sheet: {out} (2 queries)" in captured.err
    assert str(dress) in captured.out
    with Image.open(out) as sheet:
        cell = sheet.width // 4
        assert sheet.width == 4 * (CELL + PADDING) + PADDING
        assert sheet.height == 2 * (CELL + TEXT_LINES * LINE_HEIGHT + 2 * PADDING)
        row_height = sheet.height // 2
        first_result = sheet.crop((cell, 0, 2 * cell, CELL)).convert("L")
        assert first_result.getextrema()[0] < 200, "a catalog image was drawn"
        missing = sheet.crop((cell, row_height, 2 * cell, row_height + CELL)).convert("L")
        assert missing.getextrema() == (255, 255), "the failed query's row has no results"


@pytest.mark.parametrize("name", ["sheet.gif", "no-such-folder/sheet.png"])
def test_search_sheet_refuses_a_file_it_cannot_write(
    ingested: dict, tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(jpeg_bytes(photo_of("Tshirts", "Red")))
    code = main(["--data-dir", str(ingested["data"]), "search", "--sheet",
                 str(tmp_path / name), str(image)])  # fmt: skip
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_feedback_csv_exports_votes_and_stats_count_them(
    ingested: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    async def vote() -> None:
        catalog = await Catalog.open(ingested["data"] / "catalog.sqlite3")
        vector = np.arange(4, dtype=np.float32).tobytes()
        for page, value in ((0, 1), (1, -1), (2, 1)):
            await catalog.record_vote(
                Vote(7, page, value, "m", vector, ("1000", "1001"), {"gender": "Men"}, {}, 1.5e9)
            )
        await catalog.close()

    asyncio.run(vote())
    out = tmp_path / "votes.csv"
    assert main(["--data-dir", str(ingested["data"]), "feedback", "--csv", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["page"], row["vote"]) for row in rows] == [("0", "1"), ("1", "-1"), ("2", "1")]
    assert rows[0]["items"] == "1000;1001" and json.loads(rows[0]["filters"]) == {"gender": "Men"}
    assert rows[0]["voted_at"] == "2017-07-14T02:40:00+00:00"
    vector = np.frombuffer(base64.b64decode(rows[0]["query_vector"]), dtype=np.float32)
    assert vector.tolist() == [0, 1, 2, 3]
    capsys.readouterr()
    assert main(["--data-dir", str(ingested["data"]), "stats"]) == 0
    assert "feedback:       67% 👍 (2 of 3 votes)" in capsys.readouterr().out
