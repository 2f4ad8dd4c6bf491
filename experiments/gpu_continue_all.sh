#!/usr/bin/env bash
# Continue training the three shipped models side by side on one borrowed GPU, within BUDGET seconds.
#
#   DATA=.carry/data OUT=/somewhere BUDGET=420 bash experiments/gpu_continue_all.sh
#
# DATA holds content/ and styles/ (the paintings, named like the shipped styles). Each trainer
# starts from the shipped file (--init shipped: same architecture, styles and held-out paintings),
# warms up and decays its learning rate to 0 with a cosine over the BUDGET seconds
# (--lr-schedule cosine-time), however fast the GPU turns out to be, then saves and evaluates.
# The settings are the CPU phases' (model cards), with larger batches; the meta network's shared
# base trains at the same rate as the rest (--base-lr-scale 1), as it effectively did in CPU
# phases 2-4, whose schedule overwrote every group's rate; its peak rate is 2e-5, as in CPU
# phases 7-8 (at 5e-5 the continued network first lost what the previous phase's decay had
# gained), and its content weight 8, as in CPU phase 10 (sharper photos than at 4 or 6, at a
# Gram loss still below AdaIN's). The finished models go to $OUT/models.tar.part* (`cat` them into one tar),
# logs and sample grids to $OUT/runs.tgz; score them before shipping:
#   python benchmarks/quality.py feedforward --model FILE ; python benchmarks/quality.py arbitrary
DEFAULT_BUDGET=420
source "$(dirname "$0")/gpu_common.sh"
STEPS=1000000  # the time limit ends each run
PAINTERLY=${PAINTERLY:-python3 -m painterly}  # run from the repository root

styles=()
for name in $(python3 -c "import painterly; print(' '.join(s.name for s in painterly.list_styles()))"); do
  styles+=(--style "$DATA/styles/$name.jpg")
done
common=(--device "$DEVICE" --time-limit "$BUDGET" --half --quiet --lr-schedule cosine-time --steps "$STEPS")

timeout $((BUDGET + 150)) $PAINTERLY train --init shipped "${styles[@]}" --data "$DATA/content" \
    --out "$RUNS/ff/multistyle.safetensors" --size 512 --batch-size 8 --lr 1e-4 --warmup-steps 50 \
    "${common[@]}" > "$RUNS/ff.txt" 2>&1 &
timeout $((BUDGET + 150)) $PAINTERLY train-adain --init shipped --content-dir "$DATA/content" \
    --style-dir "$DATA/styles" --out "$RUNS/adain/adain_decoder.safetensors" --batch-size 16 --lr 5e-5 \
    --warmup-steps 100 "${common[@]}" > "$RUNS/adain.txt" 2>&1 &
timeout $((BUDGET + 150)) $PAINTERLY train-meta --init shipped --content-dir "$DATA/content" \
    --style-dir "$DATA/styles" --out "$RUNS/meta/meta.safetensors" --batch-size 16 --styles-per-step 4 \
    --lr 2e-5 --base-lr-scale 1 --content-weight 8 --warmup-steps 100 "${common[@]}" > "$RUNS/meta.txt" 2>&1 &
wait
pack_results
