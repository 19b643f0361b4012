# The platform image: this package's `ml` code and its locked dependencies, for jobs that run the
# platform's own code on managed compute (the scheduled drift job: `python3 -m ml.drift`).
# Built and pushed by .github/workflows/deploy.yml to the stack's PlatformImage repository.
FROM python:3.11-slim
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /opt/ml-platform
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY stacks stacks
COPY components components
COPY ml ml
COPY policies policies
COPY mlplat mlplat
RUN uv sync --frozen --no-dev
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER 65534
