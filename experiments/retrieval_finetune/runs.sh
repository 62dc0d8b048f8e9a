#!/usr/bin/env bash
# The runs of docs/results.md "Retrieval fine-tune on stored vectors" (issue 12), in order.
# Vectors: prepare.py (validation/test/train with 200 documents), then the 500-document training set.
set -euo pipefail
cd "$(dirname "$0")"
P=${PYTHON:-python}
D=${VBERT_HOME:-$HOME/.cache/vbert}/experiments/retrieval-finetune
D500=$D-500
$P prepare.py
mkdir -p "$D500" && cp "$D/validation.npz" "$D500/"
$P prepare.py --parts train --train-documents 500 --out "$D500"
R=${RUNS:-runs}
# transformer from mean pooling, query->document InfoNCE, anchor 10 (lr 3e-5): 100 / 200 / 500 documents
$P train.py --output $R/v1-100 --train-documents 100 --steps 150 --eval-every 25 --lr 3e-5 --anchor-weight 10 --temperature 0.05
$P train.py --output $R/v1 --steps 200 --eval-every 50 --lr 3e-5 --anchor-weight 10 --temperature 0.05
$P train.py --data "$D500" --output $R/v1-500 --steps 150 --eval-every 25 --lr 3e-5 --anchor-weight 10 --temperature 0.05
# the same with a strong anchor (100), lr 1e-5 and chunk pseudo-queries: 200 / 500 documents
$P train.py --output $R/v3 --steps 150 --eval-every 25 --lr 1e-5 --anchor-weight 100 --temperature 0.05 --chunk-weight 1
$P train.py --data "$D500" --output $R/v3-500 --steps 150 --eval-every 25 --lr 1e-5 --anchor-weight 100 --temperature 0.05 --chunk-weight 1
$P train.py --output $R/v3-seed1 --steps 150 --eval-every 25 --lr 1e-5 --anchor-weight 100 --temperature 0.05 --chunk-weight 1 --seed 1
# low-capacity attention pooling (386 parameters): 100 / 200 / 500 documents
$P train.py --init attention-pool --output $R/ap-100 --train-documents 100 --steps 300 --eval-every 25 --lr 1e-2 --anchor-weight 0 --temperature 0.05 --documents 200
$P train.py --init attention-pool --output $R/ap1 --steps 300 --eval-every 50 --lr 1e-2 --anchor-weight 0 --temperature 0.05 --documents 200
$P train.py --data "$D500" --init attention-pool --output $R/ap-500 --steps 300 --eval-every 25 --lr 1e-2 --anchor-weight 0 --temperature 0.05 --documents 500
# the validation-selected checkpoints, once on the test split and on validation (results/retrieval-finetune/)
$P evaluate.py --split validation --output ../../results/retrieval-finetune/validation.json attention-pool=$R/ap-100 vbert-query-doc=$R/v3
$P evaluate.py --split test --output ../../results/retrieval-finetune/test.json attention-pool=$R/ap-100 vbert-query-doc=$R/v3 vbert-query-doc-seed1=$R/v3-seed1
# the same training through the library: dataset from the store, then `vbert train` (final model)
vbert data query-documents --out $R/query-documents --langs en,de --max-tokens 8000 --max-documents 200 \
  --exclude-distractors-of small --dtype float32
sed "s#data: data/query-documents#data: $R/query-documents#" ../../recipes/retrieval-finetune.yaml > $R/recipe.yaml
vbert train -r $R/recipe.yaml -o $R/train-recipe --no-progress
$P evaluate.py --split validation --output ../../results/retrieval-finetune/val-lib.json vbert-train-recipe=$R/train-recipe/model vbert-query-doc=$R/v3
$P evaluate.py --split test --output ../../results/retrieval-finetune/test-lib.json vbert-train-recipe=$R/train-recipe/model
# Finesse on the test split (CPU-sized: 4-16 x 5 samples; 30-32, 46-48, 60-64 x 3 samples), paired per band
sed -e "s/min: 60, max: 64/min: 30, max: 32/" -e "s/-long/-30-32/g" finesse-long.yaml > $R/finesse-30-32.in.yaml
sed -e "s/min: 60, max: 64/min: 46, max: 48/" -e "s/-long/-46-48/g" finesse-long.yaml > $R/finesse-46-48.in.yaml
cp finesse-short.yaml $R/finesse-short.in.yaml && cp finesse-long.yaml $R/finesse-long.in.yaml
for part in short 30-32 46-48 long; do
  sed -e "s#QUERY_DOC#$R/v3#" \
      -e "s#^runtime:#  - {name: vbert-query-doc-seed1, kind: merger, merger: $R/v3-seed1}\\n  - {name: vbert-train-recipe, kind: merger, merger: $R/train-recipe/model}\\nruntime:#" \
      $R/finesse-$part.in.yaml > $R/finesse-$part.yaml
  finesse run -c $R/finesse-$part.yaml -o $R/finesse-$part
done
$P finesse_paired.py $R/finesse-short $R/finesse-30-32 $R/finesse-46-48 $R/finesse-long \
  --output ../../results/retrieval-finetune/finesse-paired.json
# --- 2026-11-30, second session: the shipped merger -------------------------------------------------
RF=../../results/retrieval-finetune
# The same recipe with random batches (what recipes/retrieval-finetune.yaml now says) and with length
# buckets (the recipe without its `batching: random` line); the dataset is the one built above.
sed "s#data: data/query-documents#data: $R/query-documents#" ../../recipes/retrieval-finetune.yaml > $R/recipe-random.yaml
grep -v "batching: random" $R/recipe-random.yaml > $R/recipe-buckets.yaml
vbert train -r $R/recipe-random.yaml -o $R/run-random --no-progress
vbert train -r $R/recipe-buckets.yaml -o $R/run-buckets --no-progress
# Selection on the validation split: retrieval, and Finesse at 96-100 chunks on validation probes.
$P evaluate.py --split validation --output /dev/null buckets=$R/run-buckets/model random=$R/run-random/model
sed -e "s/split: test/split: validation/" -e "s/min: 60, max: 64/min: 96, max: 100/" -e "s/-long/-validation-96-100/g" \
    -e "/^  - {name: \(vbert-query-doc\|shipped\|mean-weighted\)/d" \
    -e "s#^runtime:#  - {name: buckets, kind: merger, merger: $R/run-buckets/model}\n  - {name: random, kind: merger, merger: $R/run-random/model}\nruntime:#" \
    finesse-long.yaml > $R/finesse-validation-96-100.yaml
finesse run -c $R/finesse-validation-96-100.yaml -o $R/finesse-validation-96-100
$P finesse_paired.py $R/finesse-validation-96-100 --output $RF/finesse-validation-paired.json
# The selected model in float16, as shipped in src/vbert/pretrained/default-merger.
for pair in "run-random default-random" "run-buckets default-fp16"; do
  set -- $pair
  $P -c "import sys, torch; from vbert.model import SequenceMergerModel as M; \
M.from_pretrained(sys.argv[1], dtype=torch.float32).to(torch.float16).save_pretrained(sys.argv[2])" \
    "$R/$1/model" "$R/$2"
done
# Test split, once: retrieval, Finesse at every band (the two float16 candidates added to the runs above,
# then 96-100 and 124-128 chunks for every competitor), distillation fidelity on held-out pairs.
$P evaluate.py --split validation --output $RF/validation-default.json default=$R/default-random \
  buckets=$R/default-fp16 previous-default=../../src/vbert/pretrained/distill-10to1
$P evaluate.py --split test --output $RF/test-default.json default=$R/default-random \
  buckets=$R/default-fp16 previous-default=../../src/vbert/pretrained/distill-10to1
for part in short 30-32 46-48 long; do
  sed -i "s#^runtime:#  - {name: default-fp16, kind: merger, merger: $R/default-fp16}\n  - {name: default-random, kind: merger, merger: $R/default-random}\nruntime:#" $R/finesse-$part.yaml
  finesse run -c $R/finesse-$part.yaml -o $R/finesse-$part --competitor default-fp16 --competitor default-random
done
for band in 96-100 124-128; do
  sed -e "s/min: 30, max: 32/min: ${band%-*}, max: ${band#*-}/" -e "s/-30-32/-$band/g" $R/finesse-30-32.yaml > $R/finesse-$band.yaml
  finesse run -c $R/finesse-$band.yaml -o $R/finesse-$band
done
$P finesse_paired.py $R/finesse-short $R/finesse-30-32 $R/finesse-46-48 $R/finesse-long $R/finesse-96-100 \
  $R/finesse-124-128 --output $RF/finesse-paired.json
# Held-out 10-to-1 pairs (400 test articles; experiments/fair_test/runs.sh builds them) and fidelity.
vbert evaluate distill --data "${HELDOUT:?the heldout-10to1 folder of experiments/fair_test/runs.sh}" \
  --merger mean --merger mean-weighted --merger default=$R/default-random --merger buckets=$R/default-fp16 \
  --merger previous-default=distill-10to1 -o $RF/distill.json
vbert evaluate distill --data "$HELDOUT" --merger mean --merger mean-weighted --merger default=$R/default-fp16 \
  --merger previous-default=distill-10to1 --merger qd-seed0=$R/v3 --merger qd-seed1=$R/v3-seed1 \
  -o $RF/distill-experiment.json
# The distillation kept as the anchor, from the earlier default (stopped after 50 steps: validation fell).
$P train.py --output $R/shipped-d100-lr3e-5 --init shipped --lr 3e-5 --anchor-weight 0 --distill-weight 100 \
  --steps 150 --eval-every 25 --temperature 0.05 --chunk-weight 1 --distill-data "${FAIR_DATA:?}/10-to-1"
