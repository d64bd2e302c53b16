# phenokg API image. CPU-only torch by default (the PyTorch CPU wheel index); drop the index for CUDA.
FROM python:3.11-slim
WORKDIR /srv/phenokg
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
COPY pyproject.toml constraints.txt README.md NOTICE ./
COPY app ./app
COPY kg ./kg
COPY models ./models
COPY migrations ./migrations
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt .
EXPOSE 8000
CMD ["phenokg", "serve", "--host", "0.0.0.0", "--port", "8000"]
