#!/usr/bin/env bash
# The runs of results/multi-vector/README.md (issue 12, deliverable 5), in order. Needs the vectors of
# experiments/retrieval_finetune (its prepare.py: train/validation/test .npz); nothing is embedded here.
set -euo pipefail
cd "$(dirname "$0")"
P=${PYTHON:-python}
R=${RUNS:-${TMPDIR:-/tmp}/multi-vector-runs}
OUT=../../results/multi-vector
mkdir -p "$OUT/runs"
train() {  # NAME ARGS...: one run; its arguments and validation history go to results/multi-vector/runs/
  local name=$1
  shift
  nice -n 10 $P kvectors.py train --output "$R/$name" "$@"
  cp "$R/$name/experiment.json" "$OUT/runs/$name.json"
}
# first look (k = 4, 64 documents per step): how far the learning rate moves the head
train k4-lr1e-2-d64-a0-s100 --k 4 --lr 1e-2 --steps 100
train k4-lr1e-3-d64-a0 --k 4 --lr 1e-3 --steps 150
train k4-lr1e-3-d64-a10 --k 4 --lr 1e-3 --anchor-weight 10 --steps 150
train k4-lr3e-4-d64-a0 --k 4 --lr 3e-4 --steps 150
# the grid: every k x learning rate x documents per step x anchor to the segment means, 200 steps
for k in 1 2 4 8; do
  for lr in 3e-3 1e-2; do
    for docs in 64 200; do
      for anchor in 0 10; do
        train "k$k-lr$lr-d$docs-a$anchor" --k "$k" --lr "$lr" --documents "$docs" --anchor-weight "$anchor" --steps 200
      done
    done
  done
  # with a zero-initialised d x d value map (148k more parameters)
  train "k$k-value-map-lr1e-3-d200-a10" --k "$k" --value-map --lr 1e-3 --documents 200 --anchor-weight 10 --steps 200
done
# ablation: attention within each segment only (no document context)
for k in 2 4 8; do
  for setting in "3e-3 200" "3e-3 64" "1e-2 64"; do
    read -r lr docs <<<"$setting"
    train "k$k-no-context-lr$lr-d$docs-a10" --k "$k" --no-context --lr "$lr" --documents "$docs" --anchor-weight 10 --steps 200
  done
done
# 500 training documents (experiments/retrieval_finetune/runs.sh builds them), one setting per k
D500=${VBERT_HOME:-$HOME/.cache/vbert}/experiments/retrieval-finetune-500
for k in 1 2 4 8; do
  train "k$k-500docs-lr3e-3-d200-a10" --data "$D500" --k "$k" --lr 3e-3 --documents 200 --anchor-weight 10 --steps 200
done
# segment means for k = 1, 2, 4, 8 and, per k, the head with the best validation score; validation, then test once
nice -n 10 $P kvectors.py evaluate --split validation --output "$OUT/validation.json" "$R"/k*
nice -n 10 $P kvectors.py evaluate --split test --output "$OUT/test.json" "$R"/k*
# the selected setting of every k again with seed 1 (not a selection: one run per k), validation and test
train seed1-k1-500docs-lr3e-3-d200-a10 --data "$D500" --k 1 --lr 3e-3 --documents 200 --anchor-weight 10 --steps 200 --seed 1
train seed1-k2-no-context-lr3e-3-d200-a10 --k 2 --no-context --lr 3e-3 --documents 200 --anchor-weight 10 --steps 200 --seed 1
train seed1-k4-no-context-lr1e-2-d64-a10 --k 4 --no-context --lr 1e-2 --documents 64 --anchor-weight 10 --steps 200 --seed 1
train seed1-k8-lr3e-3-d64-a10 --k 8 --lr 3e-3 --documents 64 --anchor-weight 10 --steps 200 --seed 1
nice -n 10 $P kvectors.py evaluate --split validation --output "$OUT/validation-seed1.json" "$R"/seed1-*
nice -n 10 $P kvectors.py evaluate --split test --output "$OUT/test-seed1.json" "$R"/seed1-*
# the tables of results/multi-vector/README.md
$P kvectors.py table "$OUT/validation.json"
$P kvectors.py table "$OUT/test.json"
$P kvectors.py table "$OUT/test-seed1.json"
