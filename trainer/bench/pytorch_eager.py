"""Training-step speed of KDSR in PyTorch eager, for comparison with `trainer` on the same libtorch.

Builds the network from docs/reference/kdsr-architecture.md (our own code, no official code), degrades random HR
batches with the same tensor ops the Rust trainer uses (reflect-pad 21x21 Gaussian blur, bicubic
down as resampling matrices, quantisation), and times L1 + backward + Adam steps. Prints one JSON
line. Usage: python pytorch_eager.py --c 32 --n 8 --r 3 --role teacher --batch 8 --patch 192
         --iters 30 --warmup 3 --device cpu
"""
import argparse, json, math, time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4488, 0.4371, 0.4040)


def conv(cin, cout, k=3):
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class Ddc(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.kernel = nn.Sequential(nn.Linear(c, c, bias=False), nn.LeakyReLU(0.1), nn.Linear(c, 9 * c, bias=False))

    def forward(self, x, d):
        b, c, h, w = x.shape
        k = self.kernel(d).view(-1, 1, 3, 3)
        return F.conv2d(x.view(1, -1, h, w), k, padding=1, groups=b * c).view(b, c, h, w)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.da_conv1 = Ddc(c)
        self.conv1 = conv(c, c)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x, d):
        return self.conv1(self.act(self.da_conv1(x, d))) + x


class G(nn.Module):
    def __init__(self, c, n, s):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.head = conv(3, c)
        self.blocks = nn.ModuleList([Block(c) for _ in range(n)])
        self.body = conv(c, c)
        up = []
        for _ in range(int(math.log2(s))):
            up += [conv(c, 4 * c), nn.PixelShuffle(2)]
        self.up = nn.Sequential(*up)
        self.tail = conv(c, 3)

    def forward(self, x, d):
        x0 = self.head(x - self.mean)
        h = x0
        for b in self.blocks:
            h = b(h, d)
        return self.tail(self.up(self.body(h) + x0)) + self.mean


class Ide(nn.Module):
    def __init__(self, cin, c, r):
        super().__init__()
        act = nn.LeakyReLU(0.1)
        layers = [conv(cin, c), act]
        self.res = nn.ModuleList([nn.Sequential(conv(c, c), nn.LeakyReLU(0.1), conv(c, c)) for _ in range(r)])
        self.head = nn.Sequential(*layers)
        self.tail = nn.Sequential(conv(c, 2 * c), act, conv(2 * c, 2 * c), act, conv(2 * c, 4 * c), act)
        self.mlp = nn.Sequential(nn.Linear(4 * c, 4 * c), act, nn.Linear(4 * c, 4 * c), act)
        self.compress = nn.Sequential(nn.Linear(4 * c, c), act)

    def forward(self, x):
        h = self.head(x)
        for r in self.res:
            h = r(h) + h
        h = self.tail(h).mean(dim=(2, 3))
        dp = self.mlp(h)
        return self.compress(dp), dp


def cubic(x):
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax ** 3 - 2.5 * ax ** 2 + 1
    if ax <= 2:
        return -0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2
    return 0.0


def down_matrix(n, s):
    """Official-variant antialiased bicubic 1/s as a dense [n/s, n] matrix (replicated borders)."""
    out = n // s
    m = torch.zeros(out, n)
    width = 4 * s
    for i in range(out):
        u = (i + 1) * s + 0.5 * (1 - s)
        left = math.floor(u - width / 2)
        taps = [left + t for t in range(int(math.ceil(width)) + 2)]
        ws = [cubic((u - t) / s) / s for t in taps]
        tot = sum(ws)
        for t, w in zip(taps, ws):
            m[i, min(max(t - 1, 0), n - 1)] += w / tot
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", type=int, default=32)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--r", type=int, default=3)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--role", choices=["teacher", "student"], default="teacher")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=192)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(a.device)
    s = a.scale
    g = G(a.c, a.n, s).to(dev)
    e = Ide(3 + 3 * s * s if a.role == "teacher" else 3, a.c, a.r).to(dev)
    params = list(g.parameters()) + list(e.parameters())
    opt = torch.optim.Adam(params, lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
    mh = down_matrix(a.patch, s).to(dev)
    xs = torch.arange(-10, 11, dtype=torch.float32)

    def step():
        hr = torch.rand(a.batch, 3, a.patch, a.patch, device=dev)
        sigma = 0.2 + 3.8 * torch.rand(()).item()
        k1 = torch.exp(-(xs ** 2) / (2 * sigma ** 2))
        k = (k1[:, None] * k1[None, :])
        k = (k / k.sum()).to(dev).expand(3, 1, 21, 21)
        with torch.no_grad():
            blurred = F.conv2d(F.pad(hr, (10, 10, 10, 10), mode="reflect"), k, groups=3)
            lr = (mh @ blurred @ mh.t()).mul(255).clamp(0, 255).round().div(255)
        inp = torch.cat([lr, F.pixel_unshuffle(hr, s)], 1) if a.role == "teacher" else lr
        d, _ = e(inp)
        loss = F.l1_loss(g(lr, d), hr)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(a.iters):
        loss = step()
    loss.item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "it_per_s": a.iters / dt, "iters": a.iters, "batch": a.batch, "patch": a.patch,
                      "params": sum(p.numel() for p in params)}))


if __name__ == "__main__":
    main()
