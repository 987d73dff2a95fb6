"""Real photos with coarse classes: the class → article type / group table, and reading a
labelled folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.training.real_photos import (
    ARTICLE_TYPE_GROUPS,
    CLASS_ARTICLE_TYPES,
    CLASS_GROUPS,
    RealPhotosError,
    read_real_photos,
)
from embeddings.training.splits import is_held_out
from tests.support.catalog import write_real_photos

CLOTHING_CLASSES = {
    "T-Shirt", "Longsleeve", "Pants", "Shoes", "Shirt", "Dress", "Outwear", "Shorts", "Hat",
    "Skirt", "Polo", "Undershirt", "Blazer", "Hoodie", "Top", "Blouse",
}  # fmt: skip


def test_every_class_of_the_clothing_dataset_maps_onto_one_garment_group() -> None:
    assert set(CLASS_ARTICLE_TYPES) == CLOTHING_CLASSES
    for label, types in CLASS_ARTICLE_TYPES.items():
        assert types, label
        assert {ARTICLE_TYPE_GROUPS[kind] for kind in types} == {CLASS_GROUPS[label]}, label
    assert CLASS_GROUPS["Pants"] == CLASS_GROUPS["Skirt"] == "bottom"
    assert CLASS_GROUPS["Outwear"] == CLASS_GROUPS["Polo"] == "top"
    assert CLASS_ARTICLE_TYPES["Shoes"] >= {"Casual Shoes", "Heels", "Flip Flops", "Sandals"}
    assert {"Jeans", "Trousers", "Track Pants"} <= CLASS_ARTICLE_TYPES["Pants"]


def test_read_real_photos_splits_and_skips_bad_rows(tmp_path: Path) -> None:
    rows = write_real_photos(tmp_path, held_out=3, others=4)
    with (tmp_path / "labels.csv").open("a", encoding="utf-8") as handle:
        handle.write("gone,Shoes,False\n")  # no image file
        handle.write(f"{rows[0]['image']},Sombrero,False\n")  # unknown class
        handle.write("../etc/passwd,Hat,False\n")
    everything = read_real_photos(tmp_path)
    assert len(everything.photos) == 7
    assert [line for line, _ in everything.skipped] == [9, 10, 11]
    assert "unknown class" in everything.skipped[1][1]
    held = read_real_photos(tmp_path, held_out=True).photos
    train = read_real_photos(tmp_path, held_out=False).photos
    assert len(held) == 3 and len(train) == 4
    assert all(is_held_out(photo.id) for photo in held)
    assert not any(is_held_out(photo.id) for photo in train)
    shoe = next(photo for photo in everything.photos if photo.label == "Shoes")
    assert shoe.group == "shoes" and "Casual Shoes" in shoe.article_types
    assert shoe.genders == {"Men", "Women", "Unisex"}


def test_a_folder_without_labels_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RealPhotosError, match=r"labels\.csv"):
        read_real_photos(tmp_path)
    (tmp_path / "labels.csv").write_text("picture,class\n")
    with pytest.raises(RealPhotosError, match="image, label"):
        read_real_photos(tmp_path)
