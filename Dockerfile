# Wardrobe Consultant bot, CPU-only image. How to build and run it: docs/DEPLOY.md.
FROM python:3.11-slim

# CPU builds of torch and torchvision: the PyPI wheels bring several GB of CUDA libraries that
# this image never uses. Pinned as a pair: torchvision's compiled ops match one torch build.
ARG TORCH_VERSION=2.15.0+cpu
ARG TORCHVISION_VERSION=0.29.2+cpu

# Logs go straight to stdout; pip keeps no cache in the image; data lives in the /data volume.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WARDROBE_DATA_DIR=/data

# A fixed, non-root UID/GID (10001): a host folder bind-mounted at /data must be writable by it.
# /data is created here, owned by that user, so a named volume starts with the right owner.
RUN groupadd --system --gid 10001 wardrobe \
    && useradd --system --uid 10001 --gid wardrobe --create-home \
        --shell /usr/sbin/nologin wardrobe \
    && mkdir /data \
    && chown wardrobe:wardrobe /data

WORKDIR /app

RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

# The other dependencies, read from pyproject.toml alone, before any code is copied: this layer
# is rebuilt when pyproject.toml changes, not on every code change. The constraints keep the CPU
# torch above in place (a plain resolve could swap it for the CUDA one from PyPI). setuptools
# (the build backend) is installed here too, so the project's own install below needs no network.
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); print("\n".join(p["build-system"]["requires"] + p["project"]["dependencies"]))' > /tmp/requirements.txt \
    && printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" > /tmp/constraints.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt \
    && rm /tmp/requirements.txt /tmp/constraints.txt

# The code last (with the shipped model, package data embeddings/models/*.pt); dependencies are
# already there, hence --no-deps.
COPY bot ./bot
COPY embeddings ./embeddings
COPY storage ./storage
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info

# Declared after /data got its owner: later changes to a volume path in the build are discarded.
VOLUME /data
USER 10001:10001

# Webhook mode only (TELEGRAM_WEBHOOK_URL set): the bot listens on WEBHOOK_PORT, 8080 by default.
EXPOSE 8080

# The bot stops cleanly on SIGTERM (the default, stated so a base image cannot change it).
STOPSIGNAL SIGTERM

# `wardrobe health` exits 0 while the running bot's heartbeat is fresh. The start period covers
# the first start (loading the model, and exporting it to ONNX once).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["wardrobe", "health"]

CMD ["wardrobe", "run"]
