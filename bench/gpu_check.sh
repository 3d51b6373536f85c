#!/usr/bin/env bash
# The GPU check in one call on a CUDA machine (see bench/gpu_check.py for what it runs):
#   bench/gpu_check.sh [--json figures.json] [--only fp16,oom,...]
# Uses the python3 on PATH, or RB_PYTHON. Wheels of packages that machine lacks may be put
# in RB_WHEELS (a folder of .whl files): they are unpacked to a scratch site folder first.
# Set RB_GPU_MODELS to a folder holding realesr-animevideov3.pth to time the real weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${RB_PYTHON:-python3}"
if [ -n "${RB_WHEELS:-}" ] && compgen -G "$RB_WHEELS/*.whl" >/dev/null; then
    site="$(mktemp -d)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
        "$RB_WHEELS"/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch, spandrel, diffusers, transformers, platformdirs, cv2, skimage" || {
    echo "gpu_check needs the bridge's dependencies: pip install -e '.[ai]' (or RB_WHEELS)" >&2
    exit 2
}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" || {
    echo "no CUDA device here; for a dry run on the CPU: python bench/gpu_check.py --quick" >&2
    exit 3
}
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv || true
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error \
    DIFFUSERS_VERBOSITY=error
exec timeout 570 "$PY" bench/gpu_check.py --deadline 420 "$@"
