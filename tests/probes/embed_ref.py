"""Run `S3Gen.embed_ref` from whichever `chatterbox` is first on sys.path; used by test_runtime.py.

Usage: python embed_ref.py OUT.pt SAMPLES
Writes {"outputs": {name: tensor}, "graph": {name: bool}, "checksum": float} or {"error": str} to OUT.pt.
"""

import sys

import torch
from chatterbox.models.s3gen import S3Gen


def main() -> None:
    out_path, samples = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    model = S3Gen().eval()
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    wav = torch.randn(1, samples, generator=torch.Generator().manual_seed(1)) * 0.1
    try:
        result = model.embed_ref(wav, 24000)
    except RuntimeError as exc:
        torch.save({"error": str(exc), "checksum": checksum}, out_path)
        return
    tensors = {k: v for k, v in result.items() if torch.is_tensor(v)}
    torch.save({
        "outputs": {k: v.detach().clone() for k, v in tensors.items()},
        "graph": {k: v.grad_fn is not None for k, v in tensors.items()},
        "checksum": checksum,
    }, out_path)


if __name__ == "__main__":
    main()
