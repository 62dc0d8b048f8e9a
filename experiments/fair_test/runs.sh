#!/usr/bin/env bash
# Fair test of the seed's claims (issue 12, deliverable 2), CPU-sized; every command in order.
# Run from an empty working folder: WORK=/path/to/folder bash runs.sh (data/ and runs/ go there).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=$HERE/../../results/fair-test
cd "${WORK:?set WORK to a working folder}"
P=${PYTHON:-python}
# Articles of the Debian corpus, shuffled (seed 0), one file per split group.
$P "$HERE/export_articles.py" --out articles
# Held-out distillation pairs: 400 test-split articles, up to 3 windows of 2-10 chunks of 50 tokens each.
vbert data n-to-1 --out heldout-10to1 --max-chunks 10 --chunk-tokens 50 --max-windows-per-article 3 \
  --corpus files --corpus-dir articles/test.jsonl --splits 0,0,1 --max-articles 400
# Training data from the train/validation articles (their own splits): 10-to-1, article sequences, 512-to-1.
vbert data n-to-1 --out data/10-to-1 --max-chunks 10 --chunk-tokens 50 --corpus files \
  --corpus-dir articles/trainval.jsonl --max-articles 150 --max-windows-per-article 12
vbert data articles --out data/articles --corpus files --corpus-dir articles/trainval.jsonl --max-articles 450
vbert data n-to-1 --atomic --out data/512-to-1 --corpus files --corpus-dir articles/trainval.jsonl \
  --max-articles 30
# Three recipes x two seeds; the refine stage is the same in all three.
mkdir -p runs
for recipe in distill vbert-distill overload-distill; do
  for seed in 0 1; do
    sed "s/^seed: 0$/seed: $seed/" "$HERE/$recipe.yaml" > "runs/$recipe-seed$seed.yaml"
    vbert train -r "runs/$recipe-seed$seed.yaml" -o "runs/$recipe-seed$seed" --no-progress
  done
done
# Held-out evaluation of the final models (test split), each arm paired with plain distillation of the same seed.
mkdir -p "$RESULTS/runs"
for seed in 0 1; do
  vbert evaluate distill --data heldout-10to1 --baseline "distill-seed$seed" --merger mean \
    --merger "distill-seed$seed=runs/distill-seed$seed/model" \
    --merger "vbert-distill-seed$seed=runs/vbert-distill-seed$seed/model" \
    --merger "overload-distill-seed$seed=runs/overload-distill-seed$seed/model" \
    -o "$RESULTS/distill-seed$seed.json"
done
sed -e "s#^competitors:#competitors:\n  - {name: mean, kind: mean}#" -e "/^  - {name: \(vbert-query\|shipped\|mean\|mean-weighted\|vbert-train\)/d" \
  "$HERE/../retrieval_finetune/finesse-short.yaml" > finesse-short.yaml
for recipe in distill vbert-distill overload-distill; do
  for seed in 0 1; do
    sed -i "s#^runtime:#  - {name: $recipe-seed$seed, kind: merger, merger: runs/$recipe-seed$seed/model}\nruntime:#" finesse-short.yaml
  done
done
finesse run -c finesse-short.yaml -o finesse-short
for folder in finesse-short/results/*/; do
  mkdir -p "$RESULTS/finesse-short/$(basename "$folder")" && cp "$folder/results.json" "$RESULTS/finesse-short/$(basename "$folder")/"
done
for seed in 0 1; do
  $P "$HERE/../retrieval_finetune/finesse_paired.py" finesse-short --baseline "distill-seed$seed" \
    --output "$RESULTS/finesse-paired-seed$seed.json"
done
(cd "$HERE/../retrieval_finetune" && $P evaluate.py --split test --output "$RESULTS/retrieval.json" \
  $(for r in distill vbert-distill overload-distill; do for s in 0 1; do echo "$r-seed$s=$WORK/runs/$r-seed$s/model"; done; done))
for seed in 0 1; do
  (cd "$HERE/../retrieval_finetune" && $P evaluate.py --split test --baseline "distill-seed$seed" \
    --output "$RESULTS/retrieval-vs-distill-seed$seed.json" \
    $(for r in distill vbert-distill overload-distill; do echo "$r-seed$seed=$WORK/runs/$r-seed$seed/model"; done))
done
for name in 10-to-1 articles 512-to-1; do cp "data/$name/manifest.json" "$RESULTS/data-$name.manifest.json"; done
for run in runs/*/; do cp "$run/metrics.jsonl" "$RESULTS/runs/$(basename "$run")-metrics.jsonl"; done
