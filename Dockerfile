# jupyterhub-metrics: the loader, the dbt project and the bootstrap SQL in one image.
# Default command: one collection, then the dbt build (what the 5-minute CronJob runs).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY loader ./loader
RUN pip install --no-cache-dir --prefix=/install '.[report]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JHM_PROJECT_DIR=/app \
    DBT_TARGET_PATH=/tmp/dbt/target \
    DBT_LOG_PATH=/tmp/dbt/logs \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
COPY --from=build /install /usr/local
WORKDIR /app
COPY bootstrap_sql ./bootstrap_sql
COPY dbt_project ./dbt_project
COPY profiles.example.yml ./profiles.example.yml
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin jhm \
    && rm -rf dbt_project/target dbt_project/logs
USER 10001:10001
CMD ["sh", "-c", "jupyterhub-metrics collect && jupyterhub-metrics build"]
