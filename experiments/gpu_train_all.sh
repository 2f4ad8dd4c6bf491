#!/usr/bin/env bash
# Train every shipped model on one borrowed GPU in a single run, and render the GPU-side references.
#
#   DATA=.carry/data OUT=/somewhere BUDGET=400 bash experiments/gpu_train_all.sh
#
# DATA holds content/ and styles/ (+ MANIFEST.tsv). Everything runs in parallel on the one GPU:
#   - the shipped multi-style feed-forward model (experiments/train_shipped.py)
#   - the AdaIN decoder and the meta network (experiments/train_arbitrary.py)
#   - the optimize gallery (scripts/make_gallery.py) and reference losses (benchmarks/reference_optimize.py)
# Results are packed into $OUT/models.tar.part* (model files; `cat` them into one tar) and $OUT/runs.tgz (logs, samples, JSON).
DEFAULT_BUDGET=400
source "$(dirname "$0")/gpu_common.sh"

timeout $((BUDGET + 60)) python3 experiments/train_shipped.py --data "$DATA/content" --styles "$DATA/styles" \
    --out-dir "$RUNS/ff" --device "$DEVICE" --budget "$BUDGET" ${FF_ARGS:-} > "$RUNS/ff.txt" 2>&1 &
if [ -n "${FF_B_ARGS:-}" ]; then  # a second feed-forward variant (e.g. another style weight) to compare
  timeout $((BUDGET + 60)) python3 experiments/train_shipped.py --data "$DATA/content" --styles "$DATA/styles" \
      --out-dir "$RUNS/ff_b" --device "$DEVICE" --budget "$BUDGET" $FF_B_ARGS > "$RUNS/ff_b.txt" 2>&1 &
fi
timeout $((BUDGET + 60)) python3 experiments/train_arbitrary.py --content-dir "$DATA/content" --style-dir "$DATA/styles" \
    --out-dir "$RUNS/arb" --device "$DEVICE" --budget "$BUDGET" ${ARB_ARGS:-} > "$RUNS/arb.txt" 2>&1 &
timeout "$BUDGET" python3 scripts/make_gallery.py --device "$DEVICE" --out "$RUNS/gallery" ${GALLERY_ARGS:-} \
    > "$RUNS/gallery.txt" 2>&1 &
timeout "$BUDGET" python3 benchmarks/reference_optimize.py --device "$DEVICE" --loss feedforward --steps 100 \
    --out "$RUNS/ref_feedforward.json" ${REF_ARGS:-} > "$RUNS/ref_ff.txt" 2>&1 &
if [ -n "${REF_B_ARGS:-}" ]; then
  timeout "$BUDGET" python3 benchmarks/reference_optimize.py --device "$DEVICE" --loss feedforward --steps 100 \
      --out "$RUNS/ref_feedforward_b.json" $REF_B_ARGS > "$RUNS/ref_ff_b.txt" 2>&1 &
fi
timeout "$BUDGET" python3 benchmarks/reference_optimize.py --device "$DEVICE" --loss optimize --steps 100 300 \
    --styles the-scream udnie --images "$RUNS/ref_heldout_images" \
    --out "$RUNS/ref_heldout.json" ${REF_ARGS:-} > "$RUNS/ref_heldout.txt" 2>&1 &
wait
pack_results
