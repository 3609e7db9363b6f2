"""Regenerates trainer/assets/leaky_relu_0.1.pt: a TorchScript function `F.leaky_relu(x, 0.1)`.

tch exposes libtorch's leaky_relu only with its default slope 0.01; loading this scripted module
gives the trainer the same fused kernel (and its backward) that PyTorch's nn.LeakyReLU(0.1) uses.
Run with the repo's venv: `source scripts/env.sh && python trainer/assets/make_leaky_relu.py`.
"""
import os

import torch
import torch.nn.functional as F


class LeakyRelu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.1)


out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "leaky_relu_0.1.pt")
torch.jit.script(LeakyRelu()).save(out)
print(out, os.path.getsize(out), "bytes")
