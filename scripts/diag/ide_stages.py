"""Where does the blur σ disappear in an IDE? Runs a checkpoint's IDE (edge sizes: C 32, R 3) on 40
B100 centre crops (192 px) blurred with σ 1.2 / 2.4 / 3.6 and prints, for the pooled trunk output,
D' and D: η² (between-σ share of the variance), mean |x| and the mean std over samples.

Usage (repo root, after scripts/setup-libtorch.sh; needs numpy, safetensors, pillow in .venv):
  .venv/bin/python scripts/diag/ide_stages.py models/edge/training/teacher/final.safetensors E
  .venv/bin/python scripts/diag/ide_stages.py models/edge/student-edge.safetensors E_st
The LR is made with torch ops (reflect-padded Gaussian blur, F.interpolate bicubic with
antialias, 8-bit rounding), close to but not bit-exact with kdsr-core's official bicubic.
"""
import sys, glob, torch, torch.nn.functional as F, numpy as np
from safetensors.torch import load_file
from PIL import Image
torch.set_num_threads(1)
w = load_file(sys.argv[1]); P = sys.argv[2]  # 'E' or 'E_st'
R = 3; C = 32
def conv(x, k): return F.conv2d(x, w[k+'.weight'], w[k+'.bias'], padding=1)
act = lambda x: F.leaky_relu(x, 0.1)
def ide(x):
    h = act(conv(x, f'{P}.E.0'))
    for r in range(R):
        b = f'{P}.E.{r+2}.body'
        h = conv(act(conv(h, b+'.0')), b+'.2') + h
    for i in (R+2, R+4, R+6):
        h = act(conv(h, f'{P}.E.{i}'))
    pooled = h.mean((2,3))
    dp = act(F.linear(pooled, w[f'{P}.mlp.0.weight'], w[f'{P}.mlp.0.bias']))
    dp = act(F.linear(dp, w[f'{P}.mlp.2.weight'], w[f'{P}.mlp.2.bias']))
    d = act(F.linear(dp, w[f'{P}.compress.0.weight'], w[f'{P}.compress.0.bias']))
    return pooled, dp, d
def gk(s):
    ax = torch.arange(-10, 11, dtype=torch.float32)
    g = torch.exp(-(ax[None]**2 + ax[:,None]**2)/(2*s*s)); return g/g.sum()
def degrade(hr, s):
    k = gk(s)[None,None].expand(3,1,21,21)
    b = F.conv2d(F.pad(hr, (10,10,10,10), mode='reflect'), k, groups=3)
    lr = F.interpolate(b, scale_factor=0.25, mode='bicubic', antialias=True, align_corners=False)
    return (lr.clamp(0,1)*255).round()/255
def eta(x, lab):
    x = x - x.mean(0); tot = (x**2).sum()
    bet = sum((lab==g).sum()*(x[lab==g].mean(0)**2).sum() for g in np.unique(lab))
    return float(bet/tot)
files = sorted(glob.glob('data/B100/*.png'))[:40]
feats = {'pooled':[], 'dprime':[], 'd':[]}; lab=[]
for gi, s in enumerate([1.2, 2.4, 3.6]):
    for f in files:
        im = torch.from_numpy(np.asarray(Image.open(f).convert('RGB'))).permute(2,0,1).float()[None]/255
        H, W = im.shape[2:]; c = 192
        hr = im[:, :, (H-c)//2:(H-c)//2+c, (W-c)//2:(W-c)//2+c]
        lr = degrade(hr, s)
        x = torch.cat([lr, F.pixel_unshuffle(hr, 4)], 1) if P == 'E' else lr
        with torch.no_grad():
            p, dp, d = ide(x)
        feats['pooled'].append(p); feats['dprime'].append(dp); feats['d'].append(d); lab.append(gi)
lab = np.array(lab)
for k, v in feats.items():
    x = torch.cat(v)
    alive = (x.abs().max(0).values > 1e-6).sum().item()
    pos = (x > 0).float().mean().item()
    print(f'{k:7s} dim {x.shape[1]:3d}  eta2 {eta(x, lab):.3f}  mean|x| {x.abs().mean():.4f}  std-over-samples {x.std(0).mean():.5f}  positive frac {pos:.2f}')
