"""One client load against an OpenAI-compatible server, through the official `openai` client.

    python load.py BASE_URL MODEL [--key KEY] [--streams 1,8] [--max-tokens 128]
                   [--mode free|json_schema|tool] [--label NAME] [--client openai|raw]

For each concurrency N: N threads each stream one chat completion of up to MAX_TOKENS tokens at
once (after one warm-up request). Prints one JSON line per N: aggregate completion tokens per
second (tokens of all streams over the wall time of the round), the decode rate of one stream
(tokens after the first over the time after the first), mean, p50 and p95 time to the first
token, how many streams came back empty, and the client's own CPU time per token (it shares
the cores with the server).

`--mode json_schema` asks for the same story as JSON under a schema (`response_format`), and
`--mode tool` as the argument of a forced tool call: both constrained by a grammar, to compare
with `free` generation.

`--client raw` reads the same requests' event streams with `http.client` and `json` instead of
the official client, whose parsing of every chunk takes CPU from the two cores the server
generates on: what is left is the servers' own difference. `--client socket` sends them over a
bare socket and only notes each arrival's time while the stream runs (parsing it afterwards):
the lightest reader Python has, to measure what the server's HTTP path adds to generation.
"""

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import threading
import time
import urllib.parse

import openai

PROMPT = "Write a long story about a lighthouse keeper and a storm."
STORY = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
    "required": ["title", "story"],
}
MODES = {
    "free": {},
    "json_schema": {"response_format": {"type": "json_schema", "json_schema": {"name": "story", "schema": STORY}}},
    "tool": {
        "tools": [{"type": "function", "function": {"name": "publish_story", "parameters": STORY}}],
        "tool_choice": {"type": "function", "function": {"name": "publish_story"}},
    },
}


def one_stream(client, model, max_tokens, mode, out):
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
        **MODES[mode],
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None and (delta.content or delta.tool_calls):
            pieces += 1
            if first is None:
                first = time.monotonic() - started
    tokens = usage.completion_tokens if usage is not None else pieces
    out.append({"ttft": first, "tokens": tokens, "seconds": time.monotonic() - started})


class RawClient:
    """The same requests as `one_stream`, read with the standard library only."""

    def __init__(self, base_url, key, kind):
        self.url = urllib.parse.urlsplit(base_url)
        self.key = key
        self.kind = kind


def request_body(model, max_tokens, mode, seed):
    """The JSON of the request `one_stream` makes, for the readers without the official client."""
    return json.dumps(dict(model=model, messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens,
                           temperature=0.7, seed=seed, stream=True, stream_options={"include_usage": True},
                           **MODES[mode]))


def read_event(line):
    """A `data: {...}` line's usage (None on all but the last) and whether it holds a piece of
    the answer (text, or a tool call's arguments)."""
    chunk = json.loads(line[6:])
    delta = chunk["choices"][0].get("delta", {}) if chunk.get("choices") else {}
    return chunk.get("usage"), bool(delta.get("content") or delta.get("tool_calls"))


def one_raw_stream(client, model, max_tokens, mode, out):
    body = request_body(model, max_tokens, mode, len(out))
    started = time.monotonic()
    first = None
    pieces = 0
    usage = None
    connection = http.client.HTTPConnection(client.url.hostname, client.url.port, timeout=600)
    connection.request("POST", "/v1/chat/completions", body,
                       {"content-type": "application/json", "authorization": f"Bearer {client.key}"})
    response = connection.getresponse()
    for line in response:
        if not line.startswith(b"data: {"):
            continue
        line_usage, piece = read_event(line)
        usage = line_usage or usage
        if piece:
            pieces += 1
            if first is None:
                first = time.monotonic() - started
    connection.close()
    tokens = usage["completion_tokens"] if usage else pieces
    out.append({"ttft": first, "tokens": tokens, "seconds": time.monotonic() - started})


def one_socket_stream(client, model, max_tokens, mode, out):
    """The same request over a bare socket: each wake-up only records the bytes and the time;
    the HTTP and the events are parsed after the stream ends, off the clock of generation."""
    body = request_body(model, max_tokens, mode, len(out)).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {client.url.hostname}:{client.url.port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {client.key}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    started = time.monotonic()
    received = []
    with socket.create_connection((client.url.hostname, client.url.port), timeout=600) as s:
        s.sendall(head + body)
        while data := s.recv(1 << 16):
            received.append((time.monotonic(), data))
    first = None
    usage = None
    pieces = 0
    for at, data in received:
        # The first piece of content (the first chunk's delta holds only the role and "").
        if first is None and CONTENT.search(data):
            first = at - started
    raw = b"".join(data for _, data in received)
    status, _, rest = raw.partition(b"\r\n")
    if b" 200 " not in status:
        raise RuntimeError(f"the server answered {status!r}")
    for line in dechunk(rest.partition(b"\r\n\r\n")[2]).split(b"\n"):
        if line.startswith(b"data: {"):
            line_usage, piece = read_event(line)
            usage = line_usage or usage
            pieces += piece
    tokens = usage["completion_tokens"] if usage else pieces
    out.append({"ttft": first, "tokens": tokens, "seconds": received[-1][0] - started if received else 0})


# A delta with text in it, or a tool call's arguments.
CONTENT = re.compile(rb'"(content|arguments)":"[^"]')


def dechunk(raw):
    """The body of an HTTP/1.1 response in chunked transfer encoding."""
    body, at = [], 0
    while True:
        end = raw.index(b"\r\n", at)
        size = int(raw[at:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(body)
        body.append(raw[end + 2:end + 2 + size])
        at = end + 2 + size + 2


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def round_of(client, model, streams, max_tokens, mode="free"):
    out = []
    target = {"raw": one_raw_stream, "socket": one_socket_stream}.get(getattr(client, "kind", None), one_stream)
    threads = [threading.Thread(target=target, args=(client, model, max_tokens, mode, out)) for _ in range(streams)]
    started = time.monotonic()
    cpu_started = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    client_cpu = time.process_time() - cpu_started
    ttfts = [r["ttft"] for r in out if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in out)
    decode = [
        (r["tokens"] - 1) / (r["seconds"] - r["ttft"])
        for r in out
        if r["ttft"] is not None and r["tokens"] > 1 and r["seconds"] > r["ttft"]
    ]
    return {
        "mode": mode,
        "streams": streams,
        "tokens": tokens,
        "wall_s": round(wall, 3),
        "aggregate_tok_s": round(tokens / wall, 2),
        "decode_tok_s_mean": round(statistics.mean(decode), 2) if decode else None,
        "ttft_mean_s": round(statistics.mean(ttfts), 3) if ttfts else None,
        "ttft_p50_s": round(percentile(ttfts, 50), 3) if ttfts else None,
        "ttft_p95_s": round(percentile(ttfts, 95), 3) if ttfts else None,
        "empty_streams": sum(1 for r in out if r["tokens"] == 0 or r["ttft"] is None),
        # This client's own CPU time per token: it runs on the cores the server generates on.
        "client_cpu_ms_per_token": round(client_cpu * 1000 / tokens, 3) if tokens else None,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("model")
    parser.add_argument("--key", default="none")
    parser.add_argument("--streams", default="1,8")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--label", default="")
    parser.add_argument("--mode", default="free", choices=sorted(MODES))
    parser.add_argument("--round", type=int, default=0, help="recorded in the output, for alternating runs")
    parser.add_argument("--client", default="openai", choices=["openai", "raw", "socket"])
    args = parser.parse_args()
    if args.client in ("raw", "socket"):
        client = RawClient(args.base_url, args.key, args.client)
    else:
        client = openai.OpenAI(base_url=args.base_url.rstrip("/") + "/v1", api_key=args.key, timeout=600, max_retries=0)
    round_of(client, args.model, 1, 8, args.mode)  # warm-up
    for n in [int(s) for s in args.streams.split(",")]:
        load1 = os.getloadavg()[0]
        result = round_of(client, args.model, n, args.max_tokens, args.mode)
        result.update(server=args.label, round=args.round, load1_before=round(load1, 2), client=args.client)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
