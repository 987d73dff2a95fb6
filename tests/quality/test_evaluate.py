"""``wardrobe evaluate``: the metric functions on hand-made cases, configurations, the gallery
split, and whole runs through the product's search path on the generated catalog (and on a
slice of fashion-dev when it is present)."""

from __future__ import annotations

import argparse
import asyncio
import csv
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.cli.evaluate import parse_configuration
from bot.cli.main import main
from bot.quality.configs import Configuration, configure
from bot.quality.gallery import phone_photos, write_gallery
from bot.quality.metrics import Means, class_precision, label_precision, recall_at
from bot.quality.report import format_class_table, format_table
from bot.quality.runner import ConfigResult, Evaluation, evaluate
from bot.settings import Settings
from embeddings.training.splits import is_held_out
from storage.models import CatalogItem
from tests.support.catalog import write_catalog, write_real_photos
from tests.support.paths import FASHION_DEV

pytestmark = pytest.mark.usefixtures("no_env_file")


def item(item_id: str, article_type: str | None, colour: str | None, gender: str) -> CatalogItem:
    return CatalogItem(
        id=item_id,
        name=item_id,
        image_path="",
        article_type=article_type,
        base_colour=colour,
        gender=gender,
    )


def test_label_precision_counts_matches_over_k() -> None:
    query = item("q", "Tshirts", "Red", "Men")
    results = [
        item("1", "Tshirts", "Red", "Men"),
        item("2", "Tshirts", "Blue", "Men"),
        item("3", "Jeans", "Red", "Women"),
        item("4", "Tshirts", "Red", "Women"),
        item("5", "Shirts", None, "Men"),
        item("6", "Tshirts", "Red", "Men"),  # beyond k: not counted
    ]
    assert label_precision(query, results, 5) == {
        "type": 3 / 5,
        "colour": 3 / 5,
        "type+colour": 2 / 5,
        "gender": 3 / 5,
    }
    # Fewer results than k are not rewarded: one right answer out of five asked for.
    assert label_precision(query, results[:1], 5)["type"] == 1 / 5


def test_label_precision_leaves_out_labels_the_query_lacks() -> None:
    query = item("q", "Tshirts", None, "Men")
    assert label_precision(query, [item("1", "Tshirts", None, "Men")], 5) == {
        "type": 1 / 5,
        "gender": 1 / 5,
    }


def test_class_precision_counts_fitting_types_and_groups() -> None:
    shown = [
        item("1", "Jeans", "Blue", "Men"),
        item("2", "Track Pants", "Black", "Men"),
        item("3", "Shorts", "Blue", "Men"),
        item("4", "Tshirts", "Blue", "Men"),
        item("5", None, None, "Men"),
    ]
    assert class_precision("Pants", shown) == {"type": 0.4, "group": 0.6}
    assert class_precision("Shoes", shown[:2]) == {"type": 0.0, "group": 0.0}


def test_recall_at_k() -> None:
    assert recall_at("7", ["7", "1", "2"], 1) == 1.0
    assert recall_at("7", ["1", "7", "2"], 1) == 0.0
    assert recall_at("7", ["1", "7", "2"], 5) == 1.0
    assert recall_at("7", ["1", "2", "3", "4", "5", "7"], 5) == 0.0


def test_means_are_per_name() -> None:
    means = Means()
    means.add({"type": 1.0, "colour": 0.0})
    means.add({"type": 0.5})
    assert means.mean("type") == 0.75
    assert means.mean("colour") == 0.0
    assert means.count("colour") == 1
    assert means.mean("gender") is None


def test_parse_configuration_accepts_field_names_and_env_names() -> None:
    parsed = parse_configuration("small:EMBEDDING_BATCH_SIZE=4, results_per_page=6")
    assert parsed == Configuration("small", {"embedding_batch_size": "4", "results_per_page": "6"})
    assert parse_configuration("baseline") == Configuration("baseline", {})


@pytest.mark.parametrize("text", ["x:NO_SUCH_SETTING=1", "x:EMBEDDING_BATCH_SIZE", ":a=1"])
def test_parse_configuration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_configuration(text)


def test_configure_baseline_current_and_overrides(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"")
    settings = Settings(EMBEDDING_WEIGHTS=str(weights), EMBEDDING_BATCH_SIZE=16)
    scratch = tmp_path / "scratch"

    current = configure(settings, Configuration("current"), scratch)
    assert current.embedding_weights == weights
    assert current.data_dir == scratch
    assert current.model_cache_dir == settings.model_cache_dir != scratch / "models"

    baseline = configure(settings, Configuration("baseline"), scratch)
    assert baseline.embedding_weights is None
    assert baseline.embedding_backbone == "efficientnet_lite0"
    assert baseline.embedding_batch_size == 16

    custom = configure(settings, parse_configuration("b:EMBEDDING_BATCH_SIZE=4"), scratch)
    assert custom.embedding_batch_size == 4
    assert custom.embedding_weights == weights
    ablation = configure(
        settings, parse_configuration("baseline+b:EMBEDDING_BATCH_SIZE=4"), scratch
    )
    assert ablation.embedding_batch_size == 4
    assert ablation.embedding_weights is None
    with pytest.raises(ValidationError):
        configure(settings, parse_configuration("b:EMBEDDING_BATCH_SIZE=many"), scratch)


def test_configure_keeps_trained_weights_of_the_real_data_dir(tmp_path: Path) -> None:
    """``EMBEDDING_TRAINED=auto`` looks in the data dir: moving to a scratch dir must not lose
    the weights for current, and baseline never uses them."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "trained-model.pt").write_bytes(b"")
    settings = Settings(_env_file=None, WARDROBE_DATA_DIR=data)
    scratch = tmp_path / "scratch"
    assert configure(settings, Configuration("current"), scratch).trained_model_path() == (
        data / "trained-model.pt"
    )
    assert configure(settings, Configuration("baseline"), scratch).trained_model_path() is None


def test_write_gallery_keeps_the_split_and_rows_as_they_are(tmp_path: Path) -> None:
    source = tmp_path / "styles.csv"
    ids = [str(number) for number in range(1000, 1200)]
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "articleType", "productDisplayName"])
        for item_id in ids:
            writer.writerow([item_id, "Tshirts", "Red", "Tshirt, with a comma"])
    gallery = tmp_path / "gallery.csv"

    assert write_gallery(source, gallery, "heldout") == sum(map(is_held_out, ids))
    with gallery.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "articleType", "productDisplayName"]
    assert {row[0] for row in rows[1:]} == {i for i in ids if is_held_out(i)}
    assert rows[1][1:] == ["Tshirts", "Red", "Tshirt, with a comma"]
    assert write_gallery(source, gallery, "all") == len(ids)


def test_phone_photos_depend_on_seed_and_item_only(tmp_path: Path) -> None:
    items = [item_for(tmp_path, product.id) for product in write_catalog(tmp_path)]
    everything = dict(phone_photos(items, None, seed=3))
    few = phone_photos(items, 5, seed=3)
    assert len(everything) == len(items) and len(few) == 5
    assert phone_photos(items, 0, seed=3) == []
    for photo_item, data in few:
        assert everything[photo_item] == data
    other_seed = dict(phone_photos(items, None, seed=4))
    assert all(other_seed[key] != data for key, data in everything.items())


def item_for(root: Path, item_id: str) -> CatalogItem:
    return CatalogItem(id=item_id, name=item_id, image_path=str(root / "images" / f"{item_id}.jpg"))


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    root = tmp_path_factory.mktemp("evaluate")
    write_catalog(root)
    rows = write_real_photos(root / "real", held_out=8, others=4)
    fine = root / "fine.csv"
    with fine.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["image", "article_type", "base_colour"])
        writer.writeheader()
        writer.writerows(
            {key: row[key] for key in ("image", "article_type", "base_colour")} for row in rows
        )
    # Configured as the baseline, so current must come out the same (module-scoped: runs
    # before the autouse chdir, hence no .env).
    settings = configure(Settings(_env_file=None), Configuration("baseline"), root / "data")
    return asyncio.run(
        evaluate(
            settings,
            root / "styles.csv",
            root / "images",
            split="all",
            phone_queries=8,
            seed=1,
            real_photos=root / "real",
            fine_labels=fine,
        )
    )


def test_evaluate_runs_every_configuration_on_the_generated_catalog(
    generated_run: Evaluation,
) -> None:
    assert [result.name for result in generated_run.results] == ["baseline", "current"]
    assert generated_run.gallery == 24 and generated_run.phone_queries == 8
    assert generated_run.real_queries == 8, "only the held-out real photos are queries"
    assert generated_run.real_classes == {
        "Dress": (2, 6), "Pants": (2, 6), "Shoes": (2, 6), "T-Shirt": (2, 6)
    }  # fmt: skip
    for result in generated_run.results:
        assert result.gallery == 24
        assert result.model == "efficientnet_lite0"
        for name, value in result.metrics.items():
            assert value is not None, name
            if not name.endswith(" ms"):
                assert 0.0 <= value <= 1.0, (name, value)
        assert result.metrics["phone ms"] > 0 and result.metrics["real ms"] > 0
        # Solid-colour silhouettes: the nearest neighbours share the shape far above chance.
        assert result.metrics["catalog type"] > 0.4
        assert result.metrics["real type"] > 0.4
        assert result.metrics["real group"] >= result.metrics["real type"]
        assert set(result.per_class) == set(generated_run.real_classes)


def test_same_model_same_quality(generated_run: Evaluation) -> None:
    """Current is configured like the baseline here: same vectors, same quality (only the
    latency may differ), so both runs went through the same path."""
    baseline, current = generated_run.results
    for key in baseline.metrics:
        if not key.endswith(" ms"):
            assert baseline.metrics[key] == pytest.approx(current.metrics[key], abs=1e-6)


def test_format_table() -> None:
    metrics = {
        "real type": 0.61,
        "real group": 0.9,
        "real exact type": None,
        "real colour": 0.2,
        "real ms": 20.04,
        "catalog type": 0.79,
        "catalog colour": 0.3,
        "catalog type+colour": 0.26,
        "catalog gender": 0.8,
        "phone R@1": 0.25,
        "phone R@5": 0.39,
        "phone type": None,
        "phone ms": 35.25,
    }
    result = ConfigResult("baseline", "lite0", 10, metrics, {"Shoes": {"type": 1.0, "group": 1.0}})
    run = Evaluation("heldout", 10, 10, 0, [result], 3, {"Shoes": (3, 7)})
    assert format_table(run, markdown=True).splitlines() == [
        "| config | model | real type P@5 | real group P@5 | real exact type P@5 "
        "| real colour P@5 | real ms | type P@5 | colour P@5 | type+colour P@5 | gender P@5 "
        "| phone R@1 | phone R@5 | phone type P@5 | phone ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        "| baseline | lite0 | 0.610 | 0.900 | - | 0.200 | 20.0 | 0.790 | 0.300 | 0.260 | 0.800 "
        "| 0.250 | 0.390 | - | 35.2 |",
    ]
    text = format_table(run).splitlines()
    assert text[0].split()[:4] == ["config", "model", "real", "type"]
    assert text[1].split() == [
        "baseline", "lite0", "0.610", "0.900", "-", "0.200", "20.0", "0.790", "0.300", "0.260",
        "0.800", "0.250", "0.390", "-", "35.2"
    ]  # fmt: skip
    assert format_class_table(run, markdown=True).splitlines() == [
        "| class | photos | gallery fits | baseline |",
        "|---|---|---|---|",
        "| Shoes | 3 | 7 | 1.00 / 1.00 |",
    ]


def test_cli_evaluate_prints_a_markdown_row(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_catalog(tmp_path)
    code = main(["--data-dir", str(tmp_path / "data"), "evaluate",
                 "--styles", str(tmp_path / "styles.csv"), "--images", str(tmp_path / "images"),
                 "--split", "all", "--phone-queries", "3", "--config", "baseline",
                 "--markdown"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "split all, 24 gallery items, 0 real photos, 3 phone photos, seed 0" in out
    assert "| baseline | efficientnet_lite0 |" in out
    assert not (tmp_path / "data").exists(), "evaluate never touches the real data dir"


def test_cli_evaluate_rejects_a_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_catalog(tmp_path)
    code = main(["evaluate", "--styles", str(tmp_path / "styles.csv"),
                 "--images", str(tmp_path / "images"), "--split", "all", "--config", "baseline",
                 "--config", "x:EMBEDDING_BACKBONE=no_such_net"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "no_such_net" in err
    assert "phone photos" not in err and "ingest" not in err, "rejected before any work"


@pytest.mark.fashion
@pytest.mark.skipif(not (FASHION_DEV / "styles.csv").is_file(), reason="no fashion-dev data")
async def test_baseline_on_a_fashion_dev_slice(tmp_path: Path) -> None:
    with (FASHION_DEV / "styles.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[:151]
    styles = tmp_path / "styles.csv"
    with styles.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    run = await evaluate(
        Settings(),
        styles,
        FASHION_DEV / "images",
        split="all",
        phone_queries=20,
        configurations=[Configuration("baseline")],
    )
    (baseline,) = run.results
    assert baseline.gallery == 150
    assert baseline.metrics["catalog type"] > 0.5
    assert baseline.metrics["phone R@5"] > 0.2
