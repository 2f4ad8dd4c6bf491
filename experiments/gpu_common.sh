# Shared by the gpu_*.sh scripts (sourced, not run): settings from the environment, and packing.
#   DATA (content/ + styles/), OUT (required), BUDGET (s; default per script), DEVICE, RUNS
set -u
DATA=${DATA:-.carry/data}
OUT=${OUT:?set OUT}
BUDGET=${BUDGET:-$DEFAULT_BUDGET}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-/tmp/runs}
mkdir -p "$RUNS" "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

# Model files to $OUT/models.tar.partNN, everything else (logs, samples, JSON) to $OUT/runs.tgz.
# The tar is split into 15 MiB parts because the device tool brings back no file over 16 MiB
# (one meta network alone is 17 MB); rejoin them with `cat models.tar.part* | tar x`.
pack_results() {
  nvidia-smi --query-gpu=name,memory.used --format=csv || true
  find "$RUNS" -name '*.safetensors' ! -name '*.ckpt.*' -print0 | tar --null -cf "$OUT/models.tar" -T -
  split -b 15M -d "$OUT/models.tar" "$OUT/models.tar.part" && rm "$OUT/models.tar"
  tar czf "$OUT/runs.tgz" --exclude='*.safetensors' -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
  ls -la "$OUT"
  tail -n 3 "$RUNS"/*.txt
}
