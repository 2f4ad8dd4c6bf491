#!/usr/bin/env bash
# Continue the shipped meta network on one borrowed GPU, one run per content weight, side by side.
#
#   DATA=.carry/data OUT=/somewhere BUDGETS="430 255" CONTENT_WEIGHTS="8 10" bash experiments/gpu_meta_sweep.sh
#
# The meta network is the shipped model that gains most from more training (its photos are still
# softer than AdaIN's), so this gives it the whole GPU. Every run starts from the shipped file (--init shipped) with the
# settings of CPU phase 8 (peak lr 2e-5, shared base at the same rate, 100 warm-up steps, cosine
# to 0 over the round's seconds) and batch 16; the runs differ only in the content weight. Each
# entry of BUDGETS is one round: warm-up and cosine decay over that many seconds, starting from the
# previous round's network (GPU phase 9 was BUDGETS="430 255", two calls on one warm machine).
# The last round's models go to $OUT/models.tar.part* (`cat` them into one tar of
# rN_cwW/meta.safetensors; earlier rounds' are deleted, the device returns at most 64 MiB), logs to
# $OUT/runs.tgz. Score each with `python benchmarks/quality.py arbitrary --meta FILE` before shipping.
DEFAULT_BUDGET=430
source "$(dirname "$0")/gpu_common.sh"
BUDGETS=${BUDGETS:-$BUDGET}
CONTENT_WEIGHTS=${CONTENT_WEIGHTS:-8 10}  # phase 10 trained at 8
PAINTERLY=${PAINTERLY:-python3 -m painterly}  # run from the repository root

round=0
for budget in $BUDGETS; do
  round=$((round + 1))
  for cw in $CONTENT_WEIGHTS; do
    init=shipped
    [ "$round" -gt 1 ] && init="$RUNS/r$((round - 1))_cw$cw/meta.safetensors"
    timeout $((budget + 150)) $PAINTERLY train-meta --init "$init" --content-dir "$DATA/content" \
        --style-dir "$DATA/styles" --out "$RUNS/r${round}_cw$cw/meta.safetensors" --batch-size 16 \
        --styles-per-step 4 --lr 2e-5 --base-lr-scale 1 --content-weight "$cw" --warmup-steps 100 \
        --device "$DEVICE" --time-limit "$budget" --half --quiet --lr-schedule cosine-time \
        --steps 1000000 > "$RUNS/r${round}_cw$cw.txt" 2>&1 &
  done
  wait
  [ "$round" -gt 1 ] && find "$RUNS" -path "$RUNS/r$((round - 1))_cw*/*.safetensors" -delete
done
pack_results
