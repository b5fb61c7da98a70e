// The reference for `modelforge bench`: the same steps straight against the llama.cpp C
// library that llama-cpp-sys-2 builds. Prints {"pp_tps": .., "tg_tps": ..}.
//
// usage: llama_bench MODEL.gguf THREADS PP TG N_CTX
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llama.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static llama_token random_token(int n_vocab) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (llama_token)((int32_t)(seed >> 33) % n_vocab);
}

static void quiet(enum ggml_log_level level, const char * text, void * data) {
    (void)level; (void)text; (void)data;
}

// Decodes `n` random tokens at positions 0..n in batches of `n_batch`; logits for the last.
static int prompt_pass(struct llama_context * ctx, struct llama_batch * batch, int n, int n_batch, int n_vocab) {
    for (int start = 0; start < n; start += n_batch) {
        batch->n_tokens = 0;
        for (int i = start; i < n && i < start + n_batch; i++) {
            int k = batch->n_tokens++;
            batch->token[k] = random_token(n_vocab);
            batch->pos[k] = i;
            batch->n_seq_id[k] = 1;
            batch->seq_id[k][0] = 0;
            batch->logits[k] = i == n - 1;
        }
        if (llama_decode(ctx, *batch) != 0) return 1;
    }
    return 0;
}

int main(int argc, char ** argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL THREADS PP TG N_CTX\n", argv[0]);
        return 2;
    }
    const int threads = atoi(argv[2]), pp = atoi(argv[3]), tg = atoi(argv[4]), n_ctx = atoi(argv[5]);
    const int n_batch = 512;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_ubatch = n_batch;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    struct llama_batch batch = llama_batch_init(n_batch, 0, 1);
    llama_memory_t mem = llama_get_memory(ctx);

    llama_memory_clear(mem, true);
    if (prompt_pass(ctx, &batch, 16, n_batch, n_vocab)) return 1;  // warm-up

    llama_memory_clear(mem, true);
    double t0 = now();
    if (pp > 0 && prompt_pass(ctx, &batch, pp, n_batch, n_vocab)) return 1;
    double pp_tps = pp > 0 ? pp / (now() - t0) : 0.0;

    llama_memory_clear(mem, true);
    t0 = now();
    for (int i = 0; i < tg; i++) {
        batch.n_tokens = 1;
        batch.token[0] = random_token(n_vocab);
        batch.pos[0] = i;
        batch.n_seq_id[0] = 1;
        batch.seq_id[0][0] = 0;
        batch.logits[0] = 1;
        if (llama_decode(ctx, batch) != 0) return 1;
    }
    double tg_tps = tg / (now() - t0);
    printf("{\"backend\": \"llama.cpp C library\", \"pp_tps\": %.2f, \"tg_tps\": %.2f}\n", pp_tps, tg_tps);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
