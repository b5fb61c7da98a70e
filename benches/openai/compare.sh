#!/usr/bin/env bash
# modelforge-server against llama-cpp-python's OpenAI server (the Python stack the original
# ModelForge was built on): the same GGUF, threads and context, with the same client load
# (benches/openai/load.py through the official `openai` client: 1 stream, then 8 concurrent
# streams; then 1 stream read by a light `http.client` reader, since the official client's
# parsing of every chunk runs on the same two cores as generation). The two servers run one
# after the other, alternating for ROUNDS rounds, so a noisy machine slows both alike; every
# line records the load average before it.
#
#   benches/openai/compare.sh [MODEL.gguf] [THREADS] [CONTEXT] [MAX_TOKENS]
#   ROUNDS=3 (default) SKIP_LLAMA_CPP_PYTHON=1 (only our server)
#   SERVER_BIN=... CLI_BIN=... (binaries already built: no cargo build)
#   KV_CACHE=auto (default) | f16 | f32 | q8_0: our server's and bench's --kv-cache.
#   llama-cpp-python keeps its default (f16); KV_CACHE=f16 compares like with like.
#
# Also measured on our server in each round: one stream under a grammar (`response_format`
# json_schema, and a forced tool call) against the same free stream, and `modelforge bench`
# tg on the same model and threads (what the HTTP path adds to bare generation), with the
# reader's own CPU time per token, which it takes from the same two cores.
#
# Installs `llama-cpp-python[server]` and `openai` into ~/.cache/modelforge/bench-venv the
# first time (llama-cpp-python compiles llama.cpp from source: ~15 minutes on 2 cores).
# Prints one JSON line per server, load and round, then the medians and ratios. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

model="${1:-$HOME/.cache/modelforge/test-models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${2:-2}"
context="${3:-2048}"
max_tokens="${4:-128}"
rounds="${ROUNDS:-3}"
kv_cache="${KV_CACHE:-auto}"
venv="$HOME/.cache/modelforge/bench-venv"
target="${CARGO_TARGET_DIR:-$HOME/.cache/modelforge/target}"

if ! "$venv/bin/python" -c "import llama_cpp.server, openai" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  # CPU only, tuned for this machine like our llama.cpp (target-cpu=native → GGML_NATIVE),
  # and like ours without the AMX kernels, which crash on the first matrix multiplication in
  # sandboxed machines with AMX (see .cargo/config.toml).
  no_amx="-U__AMX_INT8__ -U__AMX_TILE__ -U__AMX_BF16__"
  CFLAGS="$no_amx" CXXFLAGS="$no_amx" CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF" \
    "$venv/bin/pip" install -q "llama-cpp-python[server]" openai
fi
if [ -z "${SERVER_BIN:-}" ]; then
  CARGO_TARGET_DIR="$target" cargo build --release -q -p modelforge-examples --bin modelforge-server --bin modelforge
fi
server_bin="${SERVER_BIN:-$target/release/modelforge-server}"
cli_bin="${CLI_BIN:-$target/release/modelforge}"

echo "# $(date -u +%FT%TZ) model=$model threads=$threads context=$context max_tokens=$max_tokens rounds=$rounds"
echo "# server: $server_bin; cli: $cli_bin; --kv-cache $kv_cache (llama-cpp-python: its default, f16)"
echo "# modelforge: llama-cpp-sys-2 $(awk '/name = "llama-cpp-sys-2"/{getline; print $3}' Cargo.lock | tr -d '"'), target-cpu=native"
echo "# llama-cpp-python: $("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)') \
$("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode().strip())' 2>/dev/null || true)"

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
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT
load() { "$venv/bin/python" benches/openai/load.py "$@" | tee -a "$results"; }

for round in $(seq 1 "$rounds"); do
  echo "# round $round: $(uptime)"
  # modelforge-server (no auth on loopback: the load is the same bare client for both).
  p="$(port)"
  "$server_bin" --data-dir "$data/mf" --addr "127.0.0.1:$p" --model "$model" --threads "$threads" \
    --ctx-size "$context" --kv-cache "$kv_cache" --embedder none --no-auth >"$data/modelforge.log" 2>&1 &
  pid=$!
  wait_for "http://127.0.0.1:$p/health" "$pid"
  name="$(curl -s "http://127.0.0.1:$p/v1/models" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')"
  # The light reader first: after 8 concurrent streams both servers are slower for one (ours
  # keeps the 8 conversations' caches for their next turns; llama-cpp-python is still busy
  # with the requests its clients gave up on).
  load "http://127.0.0.1:$p" "$name" --max-tokens "$max_tokens" --label modelforge --round "$round" \
    --streams 1 --client raw
  load "http://127.0.0.1:$p" "$name" --max-tokens "$max_tokens" --label modelforge --round "$round"
  # Under a label of their own: by now the cache holds the 8 conversations above (llama.cpp's
  # unified cache, which every sequence's attention scans, skipping the others' cells), which
  # slows these streams against the fresh one above (with KV_CACHE=f16 by about 30 % here:
  # llama.cpp's CPU flash attention over f16 slows once the cache passes 512 cells); each is
  # compared with the free stream run beside it.
  for mode in json_schema tool free; do
    load "http://127.0.0.1:$p" "$name" --max-tokens "$max_tokens" --label modelforge-grammar --round "$round" \
      --streams 1 --mode "$mode"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

  "$cli_bin" bench --model "$model" --threads "$threads" --kv-cache "$kv_cache" --pp 64 --tg "$max_tokens" --json 2>/dev/null |
    "$venv/bin/python" -c 'import json,sys,os; r=json.loads(sys.stdin.read().strip().splitlines()[-1]); r.update(server="modelforge bench", round=int(sys.argv[1]), load1_before=round(os.getloadavg()[0],2)); print(json.dumps(r))' "$round" |
    tee -a "$results"

  if [ -z "${SKIP_LLAMA_CPP_PYTHON:-}" ]; then
    # llama-cpp-python's server with its defaults, except the same threads and context.
    p="$(port)"
    "$venv/bin/python" -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$p" \
      --n_threads "$threads" --n_threads_batch "$threads" --n_ctx "$context" >"$data/llama-cpp-python.log" 2>&1 &
    pid=$!
    wait_for "http://127.0.0.1:$p/v1/models" "$pid"
    load "http://127.0.0.1:$p" "$model" --max-tokens "$max_tokens" --label llama-cpp-python --round "$round" \
      --streams 1 --client raw
    load "http://127.0.0.1:$p" "$model" --max-tokens "$max_tokens" --label llama-cpp-python --round "$round"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  fi
done
echo "# done: $(uptime)"

"$venv/bin/python" - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(server, key, streams=None, mode="free", client="openai"):
    vals = [r[key] for r in rows if r.get("server") == server and r.get(key) is not None
            and (streams is None or r.get("streams") == streams) and r.get("mode", mode) == mode
            and r.get("client", "openai") == client]
    return statistics.median(vals) if vals else None
def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"
for n in (1, 8):
    mf, lp = med("modelforge", "aggregate_tok_s", n), med("llama-cpp-python", "aggregate_tok_s", n)
    print(f"{n} stream(s), aggregate tok/s (median): modelforge {mf} vs llama-cpp-python {lp} = {ratio(mf, lp)}; "
          f"TTFT p50/p95 {med('modelforge', 'ttft_p50_s', n)}/{med('modelforge', 'ttft_p95_s', n)} s vs "
          f"{med('llama-cpp-python', 'ttft_p50_s', n)}/{med('llama-cpp-python', 'ttft_p95_s', n)} s; "
          f"empty streams {med('modelforge', 'empty_streams', n)} vs {med('llama-cpp-python', 'empty_streams', n)}")
mf, lp = med("modelforge", "decode_tok_s_mean", 1, client="raw"), med("llama-cpp-python", "decode_tok_s_mean", 1, client="raw")
print(f"1 stream read by a light client (http.client), decode tok/s: modelforge {mf} vs llama-cpp-python {lp} = {ratio(mf, lp)}")
tg = med("modelforge bench", "tg_tps")
one = med("modelforge", "decode_tok_s_mean", 1)
print(f"HTTP one stream decode {one} tok/s vs `modelforge bench` tg {tg} tok/s = {ratio(one, tg)} "
      f"(light client: {mf} tok/s = {ratio(mf, tg)}; one measurement a round: "
      f"benches/openai/overhead.sh measures this ratio in alternating pairs)")
cpu, light_cpu = med("modelforge", "client_cpu_ms_per_token", 1), med("modelforge", "client_cpu_ms_per_token", 1, client="raw")
step = 1000 / tg if tg else None
ms = lambda v: f"{v:.3f} ms" if v is not None else "n/a"
print(f"  the reader's own CPU per token, on the same cores: official client {ms(cpu)}, light client {ms(light_cpu)}"
      + (f" (a bench step is {step:.2f} ms)" if step else ""))
free = med("modelforge-grammar", "aggregate_tok_s", 1)
for mode in ("json_schema", "tool"):
    m = med("modelforge-grammar", "aggregate_tok_s", 1, mode)
    print(f"{mode} one stream {m} tok/s vs free {free} tok/s = {ratio(m, free)} "
          f"(decode {med('modelforge-grammar', 'decode_tok_s_mean', 1, mode)} vs "
          f"{med('modelforge-grammar', 'decode_tok_s_mean', 1)})")
PY
