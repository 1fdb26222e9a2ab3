# syntax=docker/dockerfile:1
# One image for every component: `perfanalysis exporter|ingest|admin …` is the command.

# Both stages use one base image. For a rebuild to be reproducible, pin it by digest as well:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   # prints "Digest: sha256:..."
# then write FROM python:3.11-slim-bookworm@sha256:<digest> in both FROM lines (and update it
# deliberately, for security fixes).
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# A C compiler for ingest's extension (ingest/_batchfast.c, a few times faster per point) and
# gunicorn's C request parser (gunicorn_h1c, published as source only), in this stage only:
# the runtime stage gets the built virtualenv, not the compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python -m venv /opt/perfanalysis
COPY pyproject.toml setup.py README.md LICENSE ./
COPY deploy/constraints.txt ./deploy/
COPY perfanalysis ./perfanalysis
COPY exporter ./exporter
COPY ingest ./ingest
COPY tenants ./tenants
# Data the admin commands read next to the packages (pyproject.toml's package-data installs it
# as site-packages/provisioning/): seed-prices' default catalog and load-examples' documents.
COPY provisioning/prices.yaml ./provisioning/
COPY provisioning/examples/loadtests ./provisioning/examples/loadtests
# No extension built in a developer's tree may come along; the one built here must exist (pip
# treats it as optional and would install without it), and so must the package data (a missing
# template only shows as a 500 on the admin pages, whose /health still answers 200).
# Every version is pinned: pip here, the dependencies and the build dependencies of what is built
# from source by deploy/constraints.txt (--build-constraint needs pip 25.3 or newer).
RUN rm -f ingest/*.so \
 && /opt/perfanalysis/bin/pip install 'pip==26.3' \
 && /opt/perfanalysis/bin/pip install --constraint deploy/constraints.txt \
      --build-constraint deploy/constraints.txt '.[server]' \
 && /opt/perfanalysis/bin/python -I -c 'import ingest._batchfast, gunicorn_h1c' \
 && /opt/perfanalysis/bin/python -I -c 'import sys, tenants; from pathlib import Path; \
      root = Path(tenants.__file__).parent; \
      wanted = ("templates/login.html", "static/admin.css", "migrations/script.py.mako", "../provisioning/prices.yaml"); \
      missing = [name for name in wanted if not (root / name).is_file()]; \
      missing and sys.exit(f"not installed next to {root}: {missing}")'

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="PerfAnalysis" \
      org.opencontainers.image.description="node_exporter-compatible exporter, multi-tenant ingest and admin"
RUN groupadd --system --gid 10001 perfanalysis \
 && useradd --system --uid 10001 --gid perfanalysis --home-dir /var/lib/perfanalysis --create-home perfanalysis
COPY --from=build /opt/perfanalysis /opt/perfanalysis
ENV PATH=/opt/perfanalysis/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PERFANALYSIS_VAR_DIR=/var/lib/perfanalysis
USER 10001:10001
WORKDIR /var/lib/perfanalysis
ENTRYPOINT ["perfanalysis"]
CMD ["--help"]
