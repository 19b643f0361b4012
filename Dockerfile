# The platform image: this package's `ml` code and only what it needs to run (pyproject's
# `dependencies` and the `cuda` group, locked by uv.lock), for jobs that run the platform's own code
# on managed compute (the scheduled drift job: `python3 -m ml.drift`; EKS GPU training jobs). No Pulumi, moto, policy pack or tools: those are
# the `platform` group, which a plain `uv sync` adds for the program and the CLI.
# Built and pushed by .github/workflows/deploy.yml to the stack's PlatformImage repository.
FROM python:3.11-slim
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /opt/ml-platform
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
COPY pyproject.toml uv.lock ./
# `--group cuda`: the CUDA build of XGBoost (`xgboost`, not the default `cpu` group's
# `xgboost-cpu`), since EKS GPU training jobs run this image; the same build falls back to the CPU
# where no GPU is visible (`ml.models.spend.model.device`). The CUDA runtime is linked into the
# wheel and NCCL comes with it; the driver is the GPU node's.
RUN uv sync --frozen --no-default-groups --no-install-project --group cuda
COPY ml ml
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/opt/ml-platform PYTHONUNBUFFERED=1
# The NVIDIA container runtime mounts the CUDA driver library (libcuda) only for the `compute`
# capability; without it XGBoost on a GPU node finds no device and trains on the CPU.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 65534
