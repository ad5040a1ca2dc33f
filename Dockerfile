# syntax=docker/dockerfile:1
# The image deploy/ runs: meshbot and its console script on a slim Python, as a non-root user.
# Build: docker build -t registry.example.com/meshbot:0.1.0 .
#        add --build-arg ISTIOCTL_VERSION=1.24.2 for the local istioctl installer (MESHBOT_INSTALLER=istioctl).

# Build stage: wheels for meshbot and every dependency; compilers, if any wheel needs them, stay here.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY mesh mesh
COPY domain domain
COPY handlers handlers
COPY bot bot
COPY migrations migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Optional istioctl, fetched in its own stage so curl and tar never reach the final image.
FROM python:3.11-slim AS istioctl
ARG ISTIOCTL_VERSION=""
ARG TARGETARCH=amd64
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN mkdir -p /out \
    && if [ -n "$ISTIOCTL_VERSION" ]; then \
        python -c "import urllib.request, sys; urllib.request.urlretrieve(sys.argv[1], '/tmp/istioctl.tgz')" \
          "https://github.com/istio/istio/releases/download/${ISTIOCTL_VERSION}/istioctl-${ISTIOCTL_VERSION}-linux-${TARGETARCH}.tar.gz" \
        && python -c "import tarfile; tarfile.open('/tmp/istioctl.tgz').extract('istioctl', '/out', filter='data')" \
        && rm /tmp/istioctl.tgz; \
    fi

# Runtime: installed wheels only; no pip cache, no sources, no build tools, no playground.
FROM python:3.11-slim
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/meshbot-*.whl \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin meshbot
COPY --from=istioctl /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["meshbot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
