#!/usr/bin/env bash
# What the HTTP API adds to bare generation: one stream through /v1/chat/completions against
# `modelforge bench` tg on the same model and threads, measured in PAIRS alternating pairs so
# that the machine's drift (±15 % from minute to minute on a shared 2-core machine) hits both
# sides of a pair alike; prints every pair's ratio and their median.
#
#   benches/openai/overhead.sh [MODEL.gguf] [THREADS] [MAX_TOKENS]
#   PAIRS=8 (default)  SERVER_BIN=... CLI_BIN=... (else a release build into the cache's target)
#   VENV=~/.cache/modelforge/venv (a Python with `openai`, as .ci/run installs it)
#
# Each pair runs `modelforge bench --tg MAX_TOKENS`, then the same stream read three ways
# (benches/openai/load.py): over a bare socket that only notes arrival times while it runs
# (`socket`), with http.client and json (`raw`), and through the official client (`openai`).
# The reader shares the two cores with generation, so the lighter it is the closer the figure
# is to the server's own cost; each line gives the reader's CPU per token too. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

model="${1:-$HOME/.cache/modelforge/test-models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${2:-2}"
max_tokens="${3:-128}"
pairs="${PAIRS:-8}"
python="${VENV:-$HOME/.cache/modelforge/venv}/bin/python"
target="${CARGO_TARGET_DIR:-$HOME/.cache/modelforge/target}"
if [ -z "${SERVER_BIN:-}" ] || [ -z "${CLI_BIN:-}" ]; then
  CARGO_TARGET_DIR="$target" cargo build --release -q -p modelforge-examples --bin modelforge-server --bin modelforge
fi
server_bin="${SERVER_BIN:-$target/release/modelforge-server}"
cli_bin="${CLI_BIN:-$target/release/modelforge}"

data="$(mktemp -d)"
results="$data/results.jsonl"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT
p="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server_bin" --data-dir "$data/mf" --addr "127.0.0.1:$p" --model "$model" --threads "$threads" \
  --embedder none --no-auth >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$p/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.2
done
name="$(curl -s "http://127.0.0.1:$p/v1/models" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"
echo "# $(date -u +%FT%TZ) model=$model threads=$threads max_tokens=$max_tokens pairs=$pairs; $(uptime)"

for pair in $(seq 1 "$pairs"); do
  "$cli_bin" bench --model "$model" --threads "$threads" --pp 0 --tg "$max_tokens" --json 2>/dev/null |
    "$python" -c 'import json,sys; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); r.update(server="bench", round=int(sys.argv[1])); print(json.dumps(r))' "$pair" |
    tee -a "$results"
  for client in socket raw openai; do
    "$python" benches/openai/load.py "http://127.0.0.1:$p" "$name" --max-tokens "$max_tokens" --streams 1 \
      --client "$client" --label http --round "$pair" | tee -a "$results"
  done
done

"$python" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pairs = sorted({r["round"] for r in rows})
for client in ("socket", "raw", "openai"):
    ratios, cpu = [], []
    for n in pairs:
        tg = [r["tg_tps"] for r in rows if r["server"] == "bench" and r["round"] == n]
        http = [r for r in rows if r["server"] == "http" and r["round"] == n and r["client"] == client]
        if tg and http and http[0]["decode_tok_s_mean"]:
            ratios.append(http[0]["decode_tok_s_mean"] / tg[0])
            cpu.append(http[0]["client_cpu_ms_per_token"])
    print(f"{client:>6}: HTTP decode / bench tg, median of {len(ratios)} pairs {statistics.median(ratios):.3f} "
          f"(pairs: {' '.join(f'{r:.2f}' for r in ratios)}); reader CPU {statistics.median(cpu):.3f} ms/token")
print(f"bench tg median {statistics.median(r['tg_tps'] for r in rows if r['server'] == 'bench'):.1f} tok/s")
PY
