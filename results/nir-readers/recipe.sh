#!/usr/bin/env bash
# The NIR-reader measurement of docs/spiking.md ("A circuit fine-tuned at the readers' step"):
# a demo run (neurosheet pipeline --out OUT; RUN=OUT/run) fine-tuned in three stages, then read
# by snntorch's and norse's NIR importers (their environment: see benchmarks/nir_readers.py).
set -euo pipefail
RUN=${1:?usage: recipe.sh RUN_DIR}
neurosheet finetune "$RUN" --rate-cap-hz 60 --rate-cap-l2 0.1 --distill 0 --restart
neurosheet finetune "$RUN" --from-tuned --substeps 100 --train-substeps 100 --lr 0.003 \
    --finetune-steps 300 --rate-cap-hz 60 --rate-cap-l2 0.1 --distill 0
.venv-nir/bin/python benchmarks/nir_readers.py "$RUN" --trials 32 --readers snntorch,norse \
    --json readers-k100-circuit.json
neurosheet finetune "$RUN" --from-tuned --substeps 1000 --train-substeps 1000 --lr 0.001 \
    --finetune-steps 200 --rate-cap-hz 60 --rate-cap-l2 0.1 --distill 0
.venv-nir/bin/python benchmarks/nir_readers.py "$RUN" --trials 32 --readers snntorch,norse \
    --substeps 1000 --json readers-k1000-circuit.json
