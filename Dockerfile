# The image deploy/base runs: meshbot and its console script, nothing else.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY mesh mesh
COPY domain domain
COPY handlers handlers
COPY bot bot
COPY migrations migrations
RUN pip install --no-cache-dir . && useradd --uid 10001 meshbot
USER 10001
ENTRYPOINT ["meshbot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
