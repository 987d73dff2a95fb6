"""Fine-tune the embedding on the shop's own catalog (``wardrobe train``).

Recipe (see docs/BENCHMARKS.md for how it was chosen): an
:class:`~embeddings.finetuned.EmbeddingNet` (EfficientNet-Lite0, last blocks + head conv
trainable, attention pooling, projection to a unit vector) learns from two views of every
training item — the packshot exactly as the :class:`~embeddings.embedder.Embedder`
preprocesses it at inference, and a simulated phone photo of it
(:func:`.phone.simulate_phone_photo`, then a random crop and the same preprocessing) — with

* normalised-softmax classification with an additive cosine margin (CosFace) of both views'
  embeddings by articleType, baseColour and gender, so the *cosine* geometry the index searches
  groups items by type and colour;
* a symmetric InfoNCE loss between each phone view and the packshots of the batch, so a phone
  photo lands next to the packshot of the same item.

The classifiers' prototypes are saved with the weights as label heads: search ranks by them
(``bot.core.ranking``). Defaults: the last 4 MBConv blocks, 3 phone views per item, 10 epochs (the
other recipes tried: see docs/BENCHMARKS.md).

Only items outside the held-out split (:func:`.splits.is_held_out`) are used. The frozen
front of the network is run once per image and view and cached on disk; every epoch only
runs the small trainable tail.

Modules: :mod:`.config` (items, settings, result, file names), :mod:`.views` (the packshot and
phone views), :mod:`.feature_cache` (the frozen front's output on disk), :mod:`.objective`
(losses, label classes, optimiser, schedule) and :mod:`.run` (:func:`~.run.train`,
checkpoints); :mod:`.phone` (simulated shopper photos) and :mod:`.splits` (the held-out split)
serve evaluation too. Nothing is imported here, so that evaluation can use those two without
loading torch: import from the modules.
"""
