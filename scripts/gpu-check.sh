#!/usr/bin/env bash
# The training engine on a CUDA machine, under the deepspeed launcher: bf16, DeepSpeed's fused Adam,
# gradient checkpointing, checkpoints and resume. Trains the `tiny` preset on generated data, so it
# needs no data or weights; prints one JSON summary and leaves the runs in OUT_DIR.
# Usage: scripts/gpu-check.sh OUT_DIR [GPUS]
set -euo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [GPUS]}
gpus=${2:-1}
steps=200 # tiny content1 checkpoints every 100 steps: resume from step 100
mkdir -p "$out"

launch() {
    python -m deepspeed.launcher.runner --num_gpus "$gpus" --no_local_rank \
        --module sail train --preset tiny --stage content1 --steps "$steps" "$@"
}

start=$(date +%s)
launch --out "$out/full"
full_s=$(($(date +%s) - start))

# The same run stopped after its step-100 checkpoint, then resumed.
cp -r "$out/full" "$out/resumed"
rm -rf "$out/resumed/checkpoints/step$steps" "$out/resumed/model"
echo step100 >"$out/resumed/checkpoints/latest"
launch --out "$out/resumed" --resume "$out/resumed"

python - "$out" "$full_s" <<'EOF'
import json, sys
from pathlib import Path

import torch

from model_code.embed import Embedder
from model_code.items import Item
from model_code.training.stages import load_stage
from model_code.training.trainer import deepspeed_config

out, seconds = Path(sys.argv[1]), int(sys.argv[2])
def losses(run):
    rows = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["loss"] for row in rows}

full, resumed = losses("full"), losses("resumed")
after = [step for step in full if step > 100]
config = deepspeed_config(load_stage("content1"))
device = "cuda" if torch.cuda.is_available() else "cpu"
embedder = Embedder.from_pretrained(out / "full" / "model", device=device)
items = [Item(id="a", title="a red bicycle"), Item(id="b", title="a cat asleep on a sofa")]
vectors = torch.as_tensor(embedder.embed(items).vectors)
print(json.dumps({
    "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    "bf16": config["bf16"]["enabled"],
    "torch_adam": config["optimizer"]["params"]["torch_adam"],
    "steps": len(full),
    "seconds_with_startup": seconds,
    "loss_first_20": sum(full[s] for s in range(1, 21)) / 20,
    "loss_last_20": sum(full[s] for s in range(len(full) - 19, len(full) + 1)) / 20,
    "resumed_steps": sorted(resumed) == sorted(full),
    "resume_max_loss_difference": max(abs(full[s] - resumed[s]) for s in after),
    "embedding_shape": list(vectors.shape),
    "embedding_norms": [round(float(n), 4) for n in vectors.norm(dim=-1)],
}, indent=1))
EOF
