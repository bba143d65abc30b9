"""spadapt's benchmark suite: `python -m benchmarks PART` or `make bench` for every part.

Parts: step (training step time and peak memory against the frozen-base floor and PEFT),
storage (bytes on disk against the information bound and PEFT), inference (latency, mixed
batches, hot-swap), accuracy (matched-budget accuracy, 2 datasets × 3 seeds), and markdown
(regenerates BENCHMARKS.md from benchmarks/results/*.json). Nothing here asserts a time.
"""
