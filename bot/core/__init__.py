"""The recommender core, free of Telegram and the command line: a photo or a catalog item in,
a page of similar items out (:mod:`.recommender`), the ranking rule (:mod:`.ranking`) and
catalog ingestion (:mod:`.indexing`)."""
