"""A differential fuzzer for the codemod: random PyTorch projects, run before and after the rewrite (issue 11)."""
