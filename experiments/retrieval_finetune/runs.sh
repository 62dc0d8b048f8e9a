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
