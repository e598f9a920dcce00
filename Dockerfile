# The recon-gateway service as a container image, built from this repository:
#
#   docker build -t recon-gateway .
#   docker run --rm -p 8080:8080 \
#       -e RECON_DATABASE_URL=postgresql://recon:PASSWORD@db.example.internal:5432/recon \
#       recon-gateway
#
# It serves plain HTTP on port 8080: put a TLS reverse proxy in front of it. Give it a
# database URL: without one it would start an embedded PostgreSQL server inside the
# container, whose data dies with the container. docs/operations.md says more.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/recon-gateway

# Only what the package is built from (.dockerignore keeps the rest out), installed with
# every dependency at the version requirements.lock pins (PIP_CONSTRAINT holds for the
# isolated build environment too).
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY parsers ./parsers
COPY matching ./matching
COPY connectors ./connectors
COPY security ./security
COPY gateway ./gateway
RUN PIP_CONSTRAINT=requirements.lock pip install . \
    && rm -rf build ./*.egg-info

# Never as root. The data folder is only used without a database URL.
RUN useradd --system --uid 10001 --home-dir /var/lib/recon-gateway --create-home recon
USER recon
ENV RECON_DATA_DIR=/var/lib/recon-gateway
EXPOSE 8080

# /healthz: the process answers (readiness, /readyz, also checks the database).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RECON_PORT', '8080') + '/healthz', timeout=4)"]

CMD ["recon-gateway", "serve", "--host", "0.0.0.0"]
