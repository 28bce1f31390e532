# The project's image: every pipeline component and the KServe predictor run in it.
# Build: docker build --build-arg SAIL_GIT_COMMIT=$(git rev-parse HEAD) \
#          -t ghcr.io/sail-embedding/sail-platform:$(git rev-parse --short HEAD) .
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    DS_BUILD_OPS=0 \
    SAIL_HOME=/var/lib/sail \
    MLFLOW_DISABLE_TELEMETRY=true \
    SAIL_FEATURE_REPO=/opt/sail/feature_repo

COPY scripts/system-deps.sh /tmp/system-deps.sh
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential ninja-build \
    && bash /tmp/system-deps.sh \
    && rm -rf /var/lib/apt/lists/* /tmp/system-deps.sh

WORKDIR /opt/sail
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
# torch first (CPU wheels; pass --build-arg TORCH_INDEX for CUDA ones), then the locked rest.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0 \
    && pip install --no-build-isolation -c requirements/lock.txt deepspeed
COPY model_code/ model_code/
COPY sail/ sail/
COPY components/ components/
COPY pipelines/ pipelines/
COPY feature_repo/ feature_repo/
COPY scripts/ scripts/
RUN pip install -c requirements/lock.txt . \
    && scripts/pip-check.sh pip \
    && pip install --no-deps -r requirements/no-deps.txt

# the source commit every MLflow run of this image records (sail.tracking.runs.git_commit)
ARG SAIL_GIT_COMMIT=
ENV SAIL_GIT_COMMIT=$SAIL_GIT_COMMIT

RUN useradd --create-home --uid 1000 sail && mkdir -p "$SAIL_HOME" && chown sail "$SAIL_HOME"
USER sail
EXPOSE 8080
CMD ["python", "-m", "sail.serving", "--host", "0.0.0.0", "--port", "8080"]
