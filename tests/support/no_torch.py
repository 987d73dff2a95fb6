"""Run a child process in which ``import torch`` fails: proof that serving with ONNX Runtime
never loads torch (hundreds of MB of memory and seconds of start-up)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.paths import REPO_ROOT

TORCH_IMPORTED = "torch was imported while serving with ONNX Runtime"


def torchless_pythonpath(root: Path) -> str:
    """A PYTHONPATH whose first entry shadows torch with a package that raises ImportError,
    followed by the repository."""
    shadow = root / "no-torch"
    (shadow / "torch").mkdir(parents=True, exist_ok=True)
    (shadow / "torch" / "__init__.py").write_text(f"raise ImportError({TORCH_IMPORTED!r})\n")
    return os.pathsep.join([str(shadow), str(REPO_ROOT)])
