"""Can an edge-sized IDE learn the blur σ at all in a CPU-length run, trained on nothing else?
Trains a fresh IDE (C 32, R 3; PyTorch default init; Adam) to regress the normalised σ
((σ − 0.2) / 3.8, σ ~ U(0.2, 4) per sample) from T91 crops (HR 128, batch 8) with an L1 loss
on D[0], and prints the mean loss of every 100 iterations (a constant predictor scores 0.25).

Usage: .venv/bin/python scripts/diag/ide_regress.py VARIANT LR ITERS
VARIANT: `teacher` (input LR + unshuffled HR, 51 channels) or `student` (LR), with suffixes
  -meansub  subtract the DIV2K mean from every channel
  -hrdiff   teacher: HR sub-pixels minus their LR pixel (what `idr.precondition` does)
  -fixstat  (x − 0.45) / 0.05 (what `idr.precondition` does for a student)
  -norm     per-sample standardisation (data-dependent, not foldable into the conv)
LR synthesis as in ide_stages.py (torch bicubic with antialias, not the official one).
"""
import sys, glob, random, torch, torch.nn as nn, torch.nn.functional as F, numpy as np
from PIL import Image
torch.set_num_threads(1); torch.manual_seed(0); random.seed(0)
C, R = 32, 3
class IDE(nn.Module):
    def __init__(s, cin):
        super().__init__()
        s.c0 = nn.Conv2d(cin, C, 3, padding=1)
        s.res = nn.ModuleList([nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(C, C, 3, padding=1)) for _ in range(R)])
        s.tail = nn.Sequential(nn.Conv2d(C, 2*C, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(2*C, 2*C, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(2*C, 4*C, 3, padding=1), nn.LeakyReLU(0.1))
        s.mlp = nn.Sequential(nn.Linear(4*C, 4*C), nn.LeakyReLU(0.1), nn.Linear(4*C, 4*C), nn.LeakyReLU(0.1))
        s.comp = nn.Sequential(nn.Linear(4*C, C), nn.LeakyReLU(0.1))
    def forward(s, x):
        h = F.leaky_relu(s.c0(x), 0.1)
        for r in s.res: h = r(h) + h
        return s.comp(s.mlp(s.tail(h).mean((2, 3))))
def gk(s):
    ax = torch.arange(-10, 11, dtype=torch.float32)
    g = torch.exp(-(ax[None]**2 + ax[:, None]**2)/(2*s*s)); return g/g.sum()
imgs = [torch.from_numpy(np.asarray(Image.open(f).convert('RGB')).copy()).permute(2, 0, 1).float()/255 for f in sorted(glob.glob('data/T91/*.png'))]
imgs = [i for i in imgs if min(i.shape[1:]) >= 128]
def batch(B=8, P=128):
    hr, sig = [], []
    for b in range(B):
        im = random.choice(imgs); y = random.randint(0, im.shape[1]-P); x = random.randint(0, im.shape[2]-P)
        hr.append(im[:, y:y+P, x:x+P]); sig.append(random.uniform(0.2, 4.0))
    hr = torch.stack(hr)
    k = torch.stack([gk(s) for s in sig])[:, None].repeat_interleave(3, 0)
    bl = F.conv2d(F.pad(hr, (10,)*4, mode='reflect').reshape(1, B*3, P+20, P+20), k, groups=B*3).reshape(B, 3, P, P)
    lr = (F.interpolate(bl, scale_factor=0.25, mode='bicubic', antialias=True).clamp(0, 1)*255).round()/255
    return lr, hr, torch.tensor(sig)
variant = sys.argv[1]; lr_ = float(sys.argv[2]); iters = int(sys.argv[3])
student = 'student' in variant
net = IDE(3 if student else 51)
opt = torch.optim.Adam(net.parameters(), lr=lr_)
mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
log = []
for it in range(iters):
    lr, hr, sig = batch()
    x = lr if student else torch.cat([lr, F.pixel_unshuffle(hr, 4)], 1)
    if 'meansub' in variant: x = x - mean.repeat(1, x.shape[1]//3, 1, 1)
    if 'hrscale' in variant and not student:
        x = torch.cat([x[:, :3], x[:, 3:] * 0.25], 1)
    if 'hrdiff' in variant and not student:
        # HR sub-pixels relative to their LR pixel: what the blur removed
        x = torch.cat([x[:, :3], x[:, 3:] - x[:, :3].repeat_interleave(16, 1)], 1)
    if 'fixstat' in variant:
        x = (x - 0.45) / 0.05
    if 'norm' in variant:
        ref = x[:, 3:] if not student else x
        mu = ref.mean((1, 2, 3), keepdim=True); sd = ref.std((1, 2, 3), keepdim=True) + 1e-3
        x = (x - mu) / sd
    d = net(x)
    t = (sig - 0.2)/3.8
    loss = (d[:, 0] - t).abs().mean()
    opt.zero_grad(); loss.backward(); opt.step()
    log.append(loss.item())
    if (it+1) % 100 == 0: print(variant, lr_, it+1, round(float(np.mean(log[-100:])), 3), flush=True)
