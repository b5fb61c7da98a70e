"""One client load against an OpenAI-compatible server, through the official `openai` client.

    python load.py BASE_URL MODEL [--key KEY] [--streams 1,8] [--max-tokens 128]

For each concurrency N: N threads each stream one chat completion of up to MAX_TOKENS tokens at
once (after one warm-up request). Prints one JSON line per N: aggregate completion tokens per
second (tokens of all streams over the wall time of the round), mean, p50 and p95 time to the
first content token, and how many streams came back empty.
"""

import argparse
import json
import statistics
import threading
import time

import openai

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def one_stream(client, model, max_tokens, out):
    started = time.monotonic()
    first = None
    pieces = 0
    usage = None
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        temperature=0.7,
        seed=len(out),
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            pieces += 1
            if first is None:
                first = time.monotonic() - started
    tokens = usage.completion_tokens if usage is not None else pieces
    out.append({"ttft": first, "tokens": tokens, "seconds": time.monotonic() - started})


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def round_of(client, model, streams, max_tokens):
    out = []
    threads = [threading.Thread(target=one_stream, args=(client, model, max_tokens, out)) for _ in range(streams)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    ttfts = [r["ttft"] for r in out if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in out)
    return {
        "streams": streams,
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "aggregate_tok_s": round(tokens / wall, 2),
        "ttft_mean_s": round(statistics.mean(ttfts), 3) if ttfts else None,
        "ttft_p50_s": round(percentile(ttfts, 50), 3) if ttfts else None,
        "ttft_p95_s": round(percentile(ttfts, 95), 3) if ttfts else None,
        "empty_streams": sum(1 for r in out if r["tokens"] == 0 or r["ttft"] is None),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("model")
    parser.add_argument("--key", default="none")
    parser.add_argument("--streams", default="1,8")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.base_url.rstrip("/") + "/v1", api_key=args.key, timeout=600, max_retries=0)
    round_of(client, args.model, 1, 8)  # warm-up
    for n in [int(s) for s in args.streams.split(",")]:
        result = round_of(client, args.model, n, args.max_tokens)
        result["server"] = args.label
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
