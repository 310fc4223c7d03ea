# Tenantry: one image, three entry points (`tenantry operator`, `tenantry controlplane
# serve`, `tenantry ingest`).
#
# No registry is reachable on the build machines, so the base is a parameter:
# scripts/image.sh makes `local/debian:bookworm` with debootstrap (minbase + python3,
# python3-venv, ca-certificates); elsewhere any Debian bookworm image with those packages
# works (e.g. BASE_IMAGE=debian:bookworm-slim plus the packages, see the README).
# The builder and the final stage share the base, so the venv's interpreter
# (/usr/bin/python3, Debian's 3.11) is the same path in both.
#
# Package installs take the CA bundle from a BuildKit secret, never by disabling TLS
# checks:  docker build --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt .
# Without the secret, pip uses the base image's bundle.
ARG BASE_IMAGE=local/debian:bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/tenantry
WORKDIR /src

# Dependencies and build requirements first, exactly as requirements/runtime.lock pins
# them (every package, transitive ones too, checked against the lock's hashes; `make
# lock` writes it from pyproject.toml), so a code change reuses this layer and the
# image holds what the tests ran against. The wheel is then built without an isolated
# build environment, with the locked setuptools.
COPY requirements/runtime.lock /tmp/runtime.lock
RUN --mount=type=secret,id=cacert,target=/run/ca.crt \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/ca.crt ]; then export PIP_CERT=/run/ca.crt; fi; \
    /opt/tenantry/bin/pip install --require-hashes --no-deps -r /tmp/runtime.lock \
    && /opt/tenantry/bin/pip check

# The project itself, as a wheel (not editable). The dev harness (tenantry_dev: local
# cluster, ClickHouse stand-in) is neither copied nor in pyproject's package list;
# scripts/image.sh checks that the image has none of it.
COPY pyproject.toml README.md ./
COPY tenantry ./tenantry
COPY tenantry_cli ./tenantry_cli
COPY operator ./operator
COPY controlplane ./controlplane
COPY ingestion ./ingestion
RUN --mount=type=secret,id=cacert,target=/run/ca.crt \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/ca.crt ]; then export PIP_CERT=/run/ca.crt; fi; \
    /opt/tenantry/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/tenantry/bin/pip install --no-deps /wheels/tenantry-*.whl \
    && site="$(/opt/tenantry/bin/python -I -c 'import controlplane, pathlib; print(pathlib.Path(controlplane.__file__).parent)')" \
    && if [ ! -d "$site/migrations" ]; then cp -r controlplane/migrations "$site/migrations"; fi \
    && /opt/tenantry/bin/python -m compileall -q "$site" \
    && /opt/tenantry/bin/tenantry --help >/dev/null

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="tenantry" \
      org.opencontainers.image.description="Tenantry operator, control plane and ingestion" \
      org.opencontainers.image.licenses="Apache-2.0"
# Read-only root filesystem: nothing is written outside /tmp (mount an emptyDir there).
ENV PATH=/opt/tenantry/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TENANTRY_TEMPLATES_DIR=/opt/tenantry/share/tenant_templates \
    TENANTRY_CP_CONSOLE_DIR=/opt/tenantry/share/console
COPY --from=builder /opt/tenantry /opt/tenantry
# The web console, built by `make console` (scripts/image.sh runs it first).
COPY console/dist /opt/tenantry/share/console
COPY tenant_templates /opt/tenantry/share/tenant_templates
COPY crds /opt/tenantry/share/crds
RUN groupadd --system --gid 10001 tenantry \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin tenantry
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 8080
ENTRYPOINT ["tenantry"]
CMD ["--help"]
