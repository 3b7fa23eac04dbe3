# tlsgate in a container, built from its wheel (docs/deploy.md):
#
#   docker build -t tlsgate .
#   docker run -d --name tlsgate -p 127.0.0.1:9219:9219 -v tlsgate:/var/lib/tlsgate \
#     -v "$PWD/inventory.yaml:/etc/tlsgate/inventory.yaml:ro" tlsgate \
#     watch --inventory /etc/tlsgate/inventory.yaml --store sqlite:////var/lib/tlsgate/history.db \
#           --listen 0.0.0.0:9219 --site /var/lib/tlsgate/site
#
# The builder stage makes the tlsgate wheel and the wheels of its dependencies; the runtime stage installs them
# with no index (nothing else is fetched) and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scanner ./scanner
COPY rules ./rules
COPY reports ./reports
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels tlsgate \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/tlsgate --create-home --shell /usr/sbin/nologin tlsgate \
    && install -d -o root -g root -m 0755 /etc/tlsgate
USER tlsgate
WORKDIR /var/lib/tlsgate
# The store, the status site and anything else watch keeps between restarts.
VOLUME ["/var/lib/tlsgate"]
# /metrics, /probe and /healthz (give watch or serve --listen 0.0.0.0:9219 inside the container).
EXPOSE 9219
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9219/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["tlsgate"]
CMD ["watch", "--help"]
