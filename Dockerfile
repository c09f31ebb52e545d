# The application image: one image for every app service of docker-compose.yml
# (migrate, api, worker, prober, sim-rest, sim-vietqr); the command picks the role.
# Dependencies are installed from the hashed lock, exactly as scripts/bootstrap.sh does.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements/bootstrap.txt requirements/lock.txt requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes -r requirements/bootstrap.txt \
    && /opt/venv/bin/uv pip sync --python /opt/venv/bin/python --require-hashes requirements/lock.txt

COPY pyproject.toml README.md ./
COPY reconciler/ reconciler/
COPY workflows/ workflows/
COPY bank_adapters/ bank_adapters/
COPY ledger/ ledger/
COPY observability/ observability/
RUN /opt/venv/bin/uv pip install --python /opt/venv/bin/python --no-deps . \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home app \
    && mkdir -p /data \
    && chown app:app /data

USER app
ENV RECONCILER_DATA_DIR=/data
# api 8080, worker and prober metrics 9101/9102, simulators 9001-9002 (admin 9011-9012)
EXPOSE 8080 9101 9102 9001 9002 9011 9012

CMD ["reconciler", "--help"]
