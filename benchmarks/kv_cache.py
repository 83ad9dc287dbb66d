"""How much the KV cache saves when an agent acts: one step at a context of L tokens, with and without it.

Without a cache, choosing the next action means re-reading the whole trial so
far (a forward pass over L tokens); with it, only the new token is computed
and attends to the stored keys and values. Both produce the same Q-values
(``tests/test_models_transformer.py`` checks it); this script prints the time
per step of each, side by side, for the course's default model and a batch of
lakes acting together.

    python benchmarks/kv_cache.py                 # contexts 256, 1024, 4096; 16 lakes
    python benchmarks/kv_cache.py --batch 64 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from icrl_course.models.transformer import QTransformer, TransformerConfig
from icrl_course.tokenize.compact import CompactTokenizer


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def step_times(model: QTransformer, batch: int, context: int, repeats: int, seed: int = 0) -> tuple[float, float]:
    """Seconds per step at ``context`` tokens: (with the cache, recomputing the prefix)."""
    vocab = CompactTokenizer().vocab_size
    ids = torch.randint(0, vocab, (batch, context), generator=torch.Generator().manual_seed(seed))
    prefix = context - repeats - 1  # the cache holds this much before the timed steps begin
    cache = model.new_cache(batch)
    model(ids[:, :prefix], cache=cache)
    position = iter(range(prefix, context))

    def cached_step():
        i = next(position)
        model(ids[:, i:i + 1], cache=cache)

    with_cache = median_seconds(cached_step, repeats)
    without = median_seconds(lambda: model(ids[:, :context]), max(1, repeats // 4))
    return with_cache, without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batch", type=int, default=16, help="lakes acting together (one token each per step)")
    parser.add_argument("--repeats", type=int, default=12, help="timed cached steps per context (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TransformerConfig()
    model = QTransformer(config).eval()
    print(f"model: {config.n_layer} layers, {config.n_embd} wide, {config.n_head} heads, "
          f"{model.num_parameters():,} parameters; {args.batch} lakes; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'context':>8} {'with cache (ms/step)':>21} {'recompute (ms/step)':>20} {'speed-up':>9}")
    for context in args.contexts:
        with_cache, without = step_times(model, args.batch, context, args.repeats)
        print(f"{context:>8} {with_cache * 1e3:>21.2f} {without * 1e3:>20.1f} {without / with_cache:>8.1f}x")


if __name__ == "__main__":
    main()
