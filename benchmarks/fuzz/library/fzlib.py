"""A library outside every generated project, on the fuzzer workers' `sys.path`: code the analysis cannot see.

`Scaled` keeps a tensor it makes, a cache extended on demand (as ESPnet's positional encodings are);
`window` returns a tensor an `lru_cache` keeps; `Plain` keeps nothing. Made under inference mode, what the
first two keep is an inference tensor, and the next training step that saves it for backward raises.
The workers import it afresh for every driver, so nothing it keeps outlives one run.
"""

import functools

import torch
from torch import nn


class Scaled(nn.Module):
    def __init__(self, n=4):
        super().__init__()
        self.lin = nn.Linear(n, n)
        self.scale = None

    def forward(self, x):
        if self.scale is None or self.scale.shape[0] < x.shape[0]:
            self.scale = torch.linspace(0.5, 1.5, x.shape[0]).unsqueeze(1)
        return self.lin(x) * self.scale[: x.shape[0]]


class Plain(nn.Module):
    def __init__(self, n=4):
        super().__init__()
        self.lin = nn.Linear(n, n)

    def forward(self, x):
        return self.lin(x) * 0.5


@functools.cache
def window(n):
    return torch.hann_window(n) + 0.5
