#!/usr/bin/env bash
# modelforge-server against llama-cpp-python's OpenAI server (the Python stack the original
# ModelForge was built on): the same GGUF, threads and context, run one after the other, with
# the same client load (benches/openai/load.py: 1 stream, then 8 concurrent streams).
#
#   benches/openai/compare.sh [MODEL.gguf] [THREADS] [CONTEXT] [MAX_TOKENS]
#
# Installs `llama-cpp-python[server]` and `openai` into ~/.cache/modelforge/bench-venv the
# first time (llama-cpp-python compiles llama.cpp from source: many minutes on 2 cores).
# Prints one JSON line per server and load, then the ratios. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

model="${1:-$HOME/.cache/modelforge/test-models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${2:-2}"
context="${3:-2048}"
max_tokens="${4:-128}"
venv="$HOME/.cache/modelforge/bench-venv"
target="${CARGO_TARGET_DIR:-$HOME/.cache/modelforge/target}"

if ! "$venv/bin/python" -c "import llama_cpp.server, openai" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install -q "llama-cpp-python[server]" openai
fi
cargo build --release -q -p modelforge-examples --bin modelforge-server
server_bin="$target/release/modelforge-server"

port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # url pid
  for _ in $(seq 1 600); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "the server exited" >&2; return 1; }
    sleep 0.2
  done
  echo "the server did not answer $1" >&2
  return 1
}
results="$(mktemp)"
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT

# modelforge-server (no auth on loopback: the load is the same bare client for both).
p="$(port)"
"$server_bin" --data-dir "$data" --addr "127.0.0.1:$p" --model "$model" --threads "$threads" \
  --ctx-size "$context" --embedder none --no-auth 2>"$data/modelforge.log" &
pid=$!
wait_for "http://127.0.0.1:$p/health" "$pid"
name="$(curl -s "http://127.0.0.1:$p/v1/models" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"
"$venv/bin/python" benches/openai/load.py "http://127.0.0.1:$p" "$name" --max-tokens "$max_tokens" --label modelforge | tee -a "$results"
kill "$pid"; wait "$pid" 2>/dev/null || true

# llama-cpp-python's server with its defaults, except the same threads and context.
p="$(port)"
"$venv/bin/python" -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$p" \
  --n_threads "$threads" --n_threads_batch "$threads" --n_ctx "$context" 2>"$data/llama-cpp-python.log" &
pid=$!
wait_for "http://127.0.0.1:$p/v1/models" "$pid"
"$venv/bin/python" benches/openai/load.py "http://127.0.0.1:$p" "$model" --max-tokens "$max_tokens" --label llama-cpp-python | tee -a "$results"
kill "$pid"; wait "$pid" 2>/dev/null || true

"$venv/bin/python" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["server"], r["streams"]): r for r in rows}
for n in sorted({r["streams"] for r in rows}):
    mf, lp = by.get(("modelforge", n)), by.get(("llama-cpp-python", n))
    if mf and lp and lp["aggregate_tok_s"]:
        print(f"{n} stream(s): modelforge {mf['aggregate_tok_s']} tok/s vs {lp['aggregate_tok_s']} = "
              f"{mf['aggregate_tok_s'] / lp['aggregate_tok_s']:.2f}x; p95 TTFT {mf['ttft_p95_s']} s vs {lp['ttft_p95_s']} s; "
              f"empty streams {mf['empty_streams']} vs {lp['empty_streams']}")
PY
