"""embeddings.features and AsyncEmbedder.features*: photos and catalog images cropped to the
garment alike, colour descriptors from the same garment mask."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from embeddings import AsyncEmbedder, Embedder, load_image
from embeddings.colour import DIM, colour_descriptor
from embeddings.foreground import crop_to_garment, garment_mask, locate_garment
from tests.support.catalog import garment_image, jpeg_bytes, photo_of


async def test_a_photo_is_cropped_to_the_garment_before_the_cnn(embedder: Embedder) -> None:
    data = jpeg_bytes(photo_of("Dresses", "Red"))
    async_embedder = AsyncEmbedder(embedder, garment_crop=True)
    try:
        features = await async_embedder.features_bytes(data)
    finally:
        async_embedder.close()
    assert features.vectors.shape == (1, embedder.dim) and features.colours.shape == (1, DIM)
    photo = Image.open(io.BytesIO(data)).convert("RGB")
    thumbnail, mask = locate_garment(photo)
    cropped = crop_to_garment(photo, mask)
    assert cropped.size != photo.size, "the garment covers part of the photo only"
    np.testing.assert_allclose(features.vectors, embedder.embed([cropped]), atol=1e-5)
    np.testing.assert_allclose(features.colours[0], colour_descriptor(thumbnail, mask), atol=1e-6)
    full_size = colour_descriptor(photo, garment_mask(photo))
    assert features.colours[0] @ full_size > 0.99, "the thumbnail loses nothing of the colour"


async def test_without_garment_crop_the_whole_photo_is_embedded(embedder: Embedder) -> None:
    data = jpeg_bytes(photo_of("Tshirts", "Blue", size=400), quality=100)
    async_embedder = AsyncEmbedder(embedder)
    try:
        features = await async_embedder.features_bytes(data)
    finally:
        async_embedder.close()
    np.testing.assert_allclose(features.vectors, embedder.embed([load_image(data)]), atol=1e-5)


async def test_catalog_images_are_made_the_same_way(embedder: Embedder) -> None:
    """A packshot sent as a photo gets exactly its catalog vector (and finds itself)."""
    images = [photo_of("Trousers", "Green", size=300), garment_image("Casual Shoes", "Yellow")]
    async_embedder = AsyncEmbedder(embedder, garment_crop=True)
    try:
        features = await async_embedder.features(images)
        as_photo = await async_embedder.features_bytes(jpeg_bytes(images[0], quality=100))
    finally:
        async_embedder.close()
    assert async_embedder.model_name == f"{embedder.model_name}+crop"
    crops = [crop_to_garment(image, locate_garment(image)[1]) for image in images]
    np.testing.assert_allclose(features.vectors, embedder.embed(crops), atol=1e-5)
    assert features.vectors[0] @ as_photo.vectors[0] > 0.99
    assert features.colours.shape == (2, DIM)
    assert features.colours[0] @ features.colours[1] < 0.5, "green trousers, yellow shoes"
