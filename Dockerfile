# syntax=docker/dockerfile:1
# Switchboard: the production image (runs `python -m bot`, listens on PORT, default 3978).
#   docker build -t switchboard:0.1.0 .
# Configuration comes from the environment only (see README, "Configuration"). The image
# refuses local mode (no MicrosoftAppId: no inbound authentication) unless it is asked for:
#   docker run -e SWITCHBOARD_LOCAL_MODE=1 -p 3978:3978 switchboard:0.1.0

# The base image, pinned by digest so that two builds start from the same bytes: the multi-platform
# index of python:3.11-slim-bookworm (CPython 3.11.16, Debian bookworm of 2026-08-24) as the
# Docker Official Images record it (docker-library/repo-info, repos/python/remote/
# 3.11-slim-bookworm.md at 33a22f41). `make pin-base` moves the pin to what the registry serves
# now (Docker and the registry reachable); a digest is never typed in by hand.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/switchboard
ENV PATH=/opt/switchboard/bin:$PATH
WORKDIR /src
# Dependencies exactly as locked (make lock), every file checked against its hash; then the
# project alone, built with the locked setuptools.
COPY requirements/runtime.txt ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && python -m compileall -q /opt/switchboard

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/switchboard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    PORT=3978 \
    SWITCHBOARD_LOCAL_MODE=0
RUN groupadd --system --gid 10001 switchboard \
    && useradd --system --uid 10001 --gid switchboard --home-dir /app --create-home \
       --shell /usr/sbin/nologin switchboard \
    && install -d -o switchboard -g switchboard -m 0750 /app/data
COPY --from=build /opt/switchboard /opt/switchboard
WORKDIR /app
USER 10001:10001
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3978') + '/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
