"""The repository and the data sets beside it (``../shared``; tests that need one skip when
it is absent)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FASHION_DEV = REPO_ROOT.parent / "shared" / "fashion-dev"
CLOTHING_DEV = REPO_ROOT.parent / "shared" / "clothing-dev"
