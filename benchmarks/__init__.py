"""Benchmarks of chatterbox-codemod and of what it produces.

`chatterbox-codemod bench` (cli, verify, worker, equivalence, quality, memory,
stats, report, workload) is the bundled verification benchmark: it runs the original and the
rewritten `chatterbox` side by side, each in its own worker process, checks
that every component gives the same outputs, and measures what the rewrite
changes in speed and memory. With `--autocast`, a third worker runs the
rewrite in bf16 or fp16, judged on quality figures against the original.
"""
