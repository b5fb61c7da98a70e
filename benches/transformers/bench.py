"""PyTorch `transformers` on the CPU, the original app's path for safetensors models, measured
the way `modelforge bench` measures a backend: `pp` random prompt tokens in one forward pass
from an empty cache, then `tg` single-token decodes (greedy, KV cache on).

usage: python bench.py MODEL_DIR [--pp 512] [--tg 128] [--threads N] [--runs 3]
       python bench.py --export GGUF OUT_DIR   # the GGUF dequantized into a safetensors dir

Prints one JSON line per run: {"backend": "transformers", "pp_tps": ..., "tg_tps": ...}.
Needs torch, transformers, safetensors (and gguf for --export) in the running Python.
"""

import argparse
import json
import os
import sys
import time


def export(gguf: str, out: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.split(os.path.abspath(gguf))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # transformers marks a model read from GGUF as quantized and refuses save_pretrained: the
    # weights are plain float tensors by now, so write them and the config directly.
    from safetensors.torch import save_model

    os.makedirs(out, exist_ok=True)
    save_model(model, os.path.join(out, "model.safetensors"))
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["torch_dtype"] = "float32"
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tokenizer.save_pretrained(out)
    print(f"exported {gguf} to {out}: {sorted(os.listdir(out))}")


def bench(model_dir: str, pp: int, tg: int, threads: int, runs: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(1234)
    with torch.inference_mode():
        model(torch.randint(0, vocab, (1, 16), generator=gen))  # warm-up
        for _ in range(runs):
            prompt = torch.randint(0, vocab, (1, pp), generator=gen)
            start = time.perf_counter()
            model(prompt, use_cache=True)
            pp_tps = pp / (time.perf_counter() - start)

            past = None
            token = torch.randint(0, vocab, (1, 1), generator=gen)
            start = time.perf_counter()
            for _ in range(tg):
                out = model(token, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = out.logits[:, -1:].argmax(-1)
            tg_tps = tg / (time.perf_counter() - start)
            print(json.dumps({"backend": "transformers", "pp_tps": pp_tps, "tg_tps": tg_tps,
                              "threads": threads, "torch": torch.__version__}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--export", nargs=2, metavar=("GGUF", "OUT_DIR"))
    parser.add_argument("--pp", type=int, default=512)
    parser.add_argument("--tg", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.export:
        export(*args.export)
    elif args.model:
        bench(args.model, args.pp, args.tg, args.threads, args.runs)
    else:
        parser.print_usage(sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
