# Wardrobe Consultant bot, CPU-only image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    WARDROBE_DATA_DIR=/data
WORKDIR /app

# The CPU build of torch/torchvision first, so the project's install does not pull CUDA (~5 GB).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch torchvision

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY embeddings ./embeddings
COPY storage ./storage
RUN pip install .

RUN useradd --create-home wardrobe && mkdir /data && chown wardrobe /data
USER wardrobe
VOLUME /data
CMD ["wardrobe", "run"]
