#!/usr/bin/env bash
# Run INSIDE the built image (`make image-check` runs it with `buildah run`): does the image do
# what the pipeline asks of it? Non-root, no compiler, `pip check` clean, every component's entry
# point on a tiny job chained through artifact folders (the pipeline function under kfp.local),
# DeepSpeed compiling nothing, and the server answering.
set -euo pipefail
cd /opt/sail
fail() { echo "image check failed: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

step "user"
[ "$(id -u)" -ne 0 ] || fail "the image runs as root"
echo "$(id -un) (uid $(id -u)), SAIL_HOME=$SAIL_HOME"
touch "$SAIL_HOME/.writable" || fail "SAIL_HOME $SAIL_HOME is not writable"

step "no compiler on PATH"
for tool in cc gcc g++ c++ clang nvcc; do
  ! command -v "$tool" >/dev/null || fail "$tool is on PATH: $(command -v "$tool")"
done
echo "none of cc gcc g++ c++ clang nvcc (pip's ninja, a DeepSpeed dependency, compiles nothing alone)"

step "pip check"
pip check
echo "clean (the data-only wheels of requirements/no-deps.txt live outside site-packages)"

step "DeepSpeed's CPU op is prebuilt"
python -c "
from deepspeed.git_version_info import installed_ops
assert installed_ops['deepspeed_shm_comm'], installed_ops
print('deepspeed_shm_comm installed')"

step "every component, chained as the pipeline chains them (tiny preset, quick profile)"
sail pipeline run --preset tiny --profile quick --openclipart-limit 300 --baseline-margin -0.99
built=$(find "$HOME" "$SAIL_HOME" /tmp -name '*.so' -path '*torch_extensions*' 2>/dev/null || true)
[ -z "$built" ] || fail "DeepSpeed compiled at run time: $built"
echo "no op compiled at run time (no torch_extensions build)"

step "sail serve answers"
port=8080
sail serve --model-uri models:/sail-embedding/1 --port "$port" >"$SAIL_HOME/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
python - "$port" <<'EOF'
import json, sys, time, urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
deadline = time.monotonic() + 300
while True:
    try:
        with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=5) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("the server was not ready within 300 s")
    time.sleep(2)
body = {"model": "sail-embedding", "input": ["a red bicycle"], "dimensions": 32}
request = urllib.request.Request(
    f"{base}/openai/v1/embeddings", json.dumps(body).encode(), {"Content-Type": "application/json"}
)
with urllib.request.urlopen(request, timeout=60) as answer:
    version = answer.headers["x-sail-model-version"]
    vector = json.load(answer)["data"][0]["embedding"]
assert len(vector) == 32 and abs(sum(v * v for v in vector) - 1) < 1e-3, vector
print(f"/v2/health/ready 200; one embedding of {len(vector)} floats from model version {version}")
EOF
echo; echo "image check passed"
