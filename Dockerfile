# phenokg image: the API (`phenokg serve`) and the Ray head of docker-compose.yml (same code on both, so
# a training job runs what the API submitted). CPU-only torch by default; docker-compose.gpu.yml builds
# with TORCH_INDEX=https://pypi.org/simple (the CUDA wheels).
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG RAY_SPEC="ray[default]>=2.9,<3"
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PHENOKG_HOME=/data/phenokg
WORKDIR /srv/phenokg
COPY pyproject.toml constraints.txt README.md NOTICE ./
COPY app ./app
COPY kg ./kg
COPY models ./models
COPY migrations ./migrations
RUN pip install --extra-index-url "${TORCH_INDEX}" -c constraints.txt . "${RAY_SPEC}" \
 && useradd --create-home --uid 1000 phenokg \
 && mkdir -p /data/phenokg && chown phenokg:phenokg /data/phenokg
USER phenokg
VOLUME ["/data/phenokg"]
EXPOSE 8000 8265
HEALTHCHECK --interval=10s --timeout=10s --start-period=300s --retries=30 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8000/health/live', timeout=5)"
CMD ["phenokg", "serve", "--host", "0.0.0.0", "--port", "8000"]
