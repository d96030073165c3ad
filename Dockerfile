# One image for every Tide process: the api, the worker and the scaler differ only in their
# command (compose.yaml and deploy/railway/*.json set it). Dependencies come from uv.lock, so the
# image runs exactly what the tests ran.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir uv
WORKDIR /app

# dependencies first: this layer is rebuilt only when the lock changes
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project

COPY app ./app
COPY workers ./workers
COPY scaler ./scaler
COPY tide ./tide
RUN uv sync --frozen

RUN useradd --create-home --uid 10001 tide
USER tide

# the api listens on 8000, the scaler on 8080 (both honour PORT, as Railway sets it)
EXPOSE 8000 8080
# exec form: the process is PID 1 and gets SIGTERM itself, so workers drain on a stop
CMD ["tide", "api"]
