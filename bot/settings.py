"""One typed settings object, read from the environment and ``.env`` (see .env.example)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.ranking import RankingConfig
from bot.core.seeing import CLOSE_SIMILARITY
from bot.core.sources import CatalogSource, load_mapping
from embeddings.backbones import BACKBONES
from embeddings.weights import shipped_model
from storage.downloads import DownloadLimits
from storage.source import CatalogSourceError

ENV_FILE = ".env"
SECRET_SETTINGS = frozenset({"TELEGRAM_BOT_TOKEN", "WEBHOOK_SECRET_TOKEN"})
"""Never printed, in an error line or a log."""
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:[0-9]+)?)\Z")


class ConfigurationError(RuntimeError):
    """A setting the bot cannot start without is missing or wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore", populate_by_name=True)

    telegram_bot_token: str = Field("", alias="TELEGRAM_BOT_TOKEN")
    telegram_base_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    telegram_base_file_url: str = Field("", alias="TELEGRAM_BASE_FILE_URL")
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(frozenset(), alias="ADMIN_IDS")
    telegram_webhook_url: str = Field("", alias="TELEGRAM_WEBHOOK_URL")
    webhook_listen: str = Field("0.0.0.0", alias="WEBHOOK_LISTEN")
    webhook_port: int = Field(8080, ge=1, le=65535, alias="WEBHOOK_PORT")
    webhook_secret_token: str = Field(
        "", pattern=r"^[A-Za-z0-9_-]{0,256}$", alias="WEBHOOK_SECRET_TOKEN"
    )

    data_dir: Path = Field(Path("data"), alias="WARDROBE_DATA_DIR")
    catalog_feed: str = Field("", alias="CATALOG_FEED")
    catalog_feed_format: Literal["auto", "merchant", "shopify", "csv", "fashion"] = Field(
        "auto", alias="CATALOG_FEED_FORMAT"
    )
    catalog_feed_map: str = Field("", alias="CATALOG_FEED_MAP")
    catalog_shop_url: str = Field("", alias="CATALOG_SHOP_URL")
    image_download_concurrency: int = Field(
        DownloadLimits.concurrency, ge=1, le=64, alias="IMAGE_DOWNLOAD_CONCURRENCY"
    )
    image_download_timeout: float = Field(
        DownloadLimits.seconds, gt=0, le=300, alias="IMAGE_DOWNLOAD_TIMEOUT"
    )
    catalog_styles_csv: Path | None = Field(None, alias="CATALOG_STYLES_CSV")
    catalog_images_dir: Path | None = Field(None, alias="CATALOG_IMAGES_DIR")
    train_real_photos: Path | None = Field(None, alias="TRAIN_REAL_PHOTOS")

    embedding_backbone: str = Field("efficientnet_lite0", alias="EMBEDDING_BACKBONE")
    embedding_weights: Path | None = Field(None, alias="EMBEDDING_WEIGHTS")
    embedding_trained: str = Field("auto", alias="EMBEDDING_TRAINED")
    embedding_runtime: Literal["onnx", "torch"] = Field("onnx", alias="EMBEDDING_RUNTIME")
    embedding_cache_dir: Path | None = Field(None, alias="EMBEDDING_CACHE_DIR")
    embedding_device: str = Field("auto", alias="EMBEDDING_DEVICE")
    embedding_batch_size: int = Field(8, ge=1, le=512, alias="EMBEDDING_BATCH_SIZE")
    garment_crop: bool = Field(True, alias="GARMENT_CROP")

    ranking_pool: int = Field(RankingConfig.pool, ge=1, le=1000, alias="RANKING_POOL")
    colour_weight: float = Field(RankingConfig.colour_weight, ge=0, le=10, alias="COLOUR_WEIGHT")
    label_weight: float = Field(RankingConfig.label_weight, ge=0, le=10, alias="LABEL_WEIGHT")
    visual_slots: int = Field(RankingConfig.visual_slots, ge=0, le=10, alias="VISUAL_SLOTS")
    diversity: float = Field(RankingConfig.diversity, ge=0, le=10, alias="DIVERSITY")
    near_duplicate_similarity: float = Field(
        RankingConfig.near_duplicate, gt=0, le=1, alias="NEAR_DUPLICATE_SIMILARITY"
    )

    close_match_similarity: float = Field(
        CLOSE_SIMILARITY, ge=-1, le=1, alias="CLOSE_MATCH_SIMILARITY"
    )
    results_per_page: int = Field(5, ge=2, le=10, alias="RESULTS_PER_PAGE")
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024, alias="MAX_IMAGE_BYTES")
    reindex_progress_seconds: float = Field(3.0, gt=0, alias="REINDEX_PROGRESS_SECONDS")
    reindex_max_shrink: float = Field(0.5, ge=0, le=1, alias="REINDEX_MAX_SHRINK")
    searches_per_user: int = Field(5, ge=1, alias="SEARCHES_PER_USER")
    search_limit_seconds: float = Field(30.0, gt=0, alias="SEARCH_LIMIT_SECONDS")
    search_retention_days: int = Field(30, ge=1, alias="SEARCH_RETENTION_DAYS")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        """Accept ``ADMIN_IDS=1,2 3`` as well as a list."""
        if isinstance(value, str):
            parts = value.replace(",", " ").split()
            if not all(part.isdigit() for part in parts):
                raise ValueError("must be Telegram user ids (numbers), separated by commas")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("embedding_backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value not in BACKBONES:
            raise ValueError(f"must be one of {', '.join(sorted(BACKBONES))}")
        return value

    @field_validator("embedding_device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _https_webhook(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("must be the public https:// address Telegram sends updates to")
        return value

    @field_validator(
        "catalog_styles_csv",
        "catalog_images_dir",
        "train_real_photos",
        "embedding_weights",
        "embedding_cache_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """The settings, with every mistake in them as one :class:`ConfigurationError` that
        names the setting (instead of pydantic's multi-line report)."""
        try:
            settings = cls(**overrides)
        except ValidationError as error:
            raise ConfigurationError(_describe(error)) from None
        try:
            settings.catalog_source()
        except CatalogSourceError as error:
            raise ConfigurationError(f"CATALOG_FEED_MAP: {error}") from None
        if settings.telegram_webhook_url and not settings.webhook_secret_token:
            raise ConfigurationError(
                "TELEGRAM_WEBHOOK_URL is set but WEBHOOK_SECRET_TOKEN is not: choose a random "
                "secret (letters, digits, _ and -) so only Telegram can post updates"
            )
        return settings

    @classmethod
    def unknown_env_file_keys(cls, path: Path = Path(ENV_FILE)) -> list[str]:
        """Names in ``.env`` that are no setting (a typo such as ``ADMIN_ID`` would otherwise
        be ignored without a word), each with the setting it probably meant."""
        if not path.is_file():
            return []
        known = [info.alias for info in cls.model_fields.values() if info.alias]
        unknown = []
        for key in dotenv_values(path):
            if key.upper() in known:  # pydantic-settings reads names in any case
                continue
            close = difflib.get_close_matches(key, known, n=1)
            unknown.append(f"{key} (did you mean {close[0]}?)" if close else key)
        return unknown

    def secrets(self) -> list[str]:
        """What no log line may show: the bot token, its secret half, the webhook secret."""
        token = self.telegram_bot_token
        _, _, token_secret = token.partition(":")
        values = [token, self.webhook_secret_token]
        if len(token_secret) >= 8:
            values.append(token_secret)
        return [value for value in values if value]

    def catalog_source(self) -> CatalogSource | None:
        """What ``/reindex`` and the first start read: ``CATALOG_FEED``, else the Fashion
        Product Images pair ``CATALOG_STYLES_CSV`` + ``CATALOG_IMAGES_DIR``; None: neither."""
        if self.catalog_feed:
            return CatalogSource(
                self.catalog_feed,
                self.catalog_feed_format,
                load_mapping(self.catalog_feed_map),
                images_dir=self.catalog_images_dir,
                shop_url=self.catalog_shop_url or None,
            )
        if self.catalog_styles_csv is not None and self.catalog_images_dir is not None:
            return CatalogSource.fashion(self.catalog_styles_csv, self.catalog_images_dir)
        return None

    @property
    def webhook_mode(self) -> bool:
        return bool(self.telegram_webhook_url)

    @property
    def file_base_url(self) -> str:
        """File download URL; derived from the base URL (``.../bot`` → ``.../file/bot``)."""
        if self.telegram_base_file_url:
            return self.telegram_base_file_url
        base = self.telegram_base_url.rstrip("/")
        root = base.removesuffix("/bot")
        return f"{root}/file/bot"

    @property
    def downloads(self) -> DownloadLimits:
        """How catalog images are downloaded: as big as a shopper's photo may be."""
        return DownloadLimits(
            self.image_download_concurrency, self.image_download_timeout, self.max_image_bytes
        )

    @property
    def ranking(self) -> RankingConfig:
        return RankingConfig(
            pool=self.ranking_pool,
            colour_weight=self.colour_weight,
            label_weight=self.label_weight,
            visual_slots=self.visual_slots,
            diversity=self.diversity,
            near_duplicate=self.near_duplicate_similarity,
        )

    @property
    def model_cache_dir(self) -> Path:
        """Where ONNX exports of the served model are kept."""
        return self.embedding_cache_dir or self.data_dir / "models"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    def trained_model_path(self) -> Path | None:
        """The fine-tuned weights to embed with. ``auto``: ``<data dir>/trained-model.pt``
        from `wardrobe train` when it exists, else the model shipped for the backbone (none
        with ``EMBEDDING_WEIGHTS``); ``shipped``: the shipped one; ``none``: the plain
        backbone; anything else: a path."""
        value = self.embedding_trained.strip()
        if value.lower() in ("", "none"):
            return None
        if value.lower() == "auto":
            path = self.data_dir / "trained-model.pt"
            if path.is_file():
                return path
            return None if self.embedding_weights else shipped_model(self.embedding_backbone)
        if value.lower() == "shipped":
            path = shipped_model(self.embedding_backbone)
            if path is None:
                raise ValueError(f"no model ships for backbone {self.embedding_backbone!r}")
            return path
        return Path(value)


def _describe(error: ValidationError) -> str:
    """``ADMIN_IDS=abc: must be …`` for each wrong setting, on one line."""
    aliases = {name: info.alias or name for name, info in Settings.model_fields.items()}
    problems = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = aliases.get(field, field)
        message = problem["msg"].removeprefix("Value error, ")
        value = problem.get("input")
        shown = f"={value}" if isinstance(value, str | int | float) else ""
        if name in SECRET_SETTINGS:
            shown = ""
        problems.append(f"{name}{shown}: {message}")
    return "invalid setting " + "; ".join(problems)
