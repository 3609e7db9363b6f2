"""How much σ a single hand-made statistic carries: the ratio of the mean absolute gradient of the
LR to that of the bicubic-downscaled HR, over 320 T91 crops (HR 128, σ ~ U(0.2, 4)); prints its
correlation with σ and the mean absolute error of σ predicted from it (a running mean over the
sorted ratio). Usage: .venv/bin/python scripts/diag/sigma_ratio.py
"""
import random, sys
import numpy as np
import torch
import torch.nn.functional as F
sys.argv = ['x', 'teacher', '1e-3', '0']
exec(open(__file__.replace('sigma_ratio.py', 'ide_regress.py')).read().split('variant = sys.argv')[0])
xs, ys = [], []
for _ in range(40):
    lr, hr, sig = batch()
    d = F.interpolate(hr, scale_factor=0.25, mode='bicubic', antialias=True)
    g = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3)) + (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
    xs += (g(lr)/g(d)).tolist(); ys += sig.tolist()
xs, ys = np.array(xs), np.array(ys)
print('corr(ratio, sigma)', np.corrcoef(xs, ys)[0, 1])
# 1-D nearest fit: predict sigma by isotonic-ish binning
o = np.argsort(xs); pred = np.convolve(ys[o], np.ones(15)/15, 'same'); err = np.abs(pred - ys[o])[10:-10].mean()
print('mean abs err of sigma from the ratio (binned):', err, ' /3.8 =', err/3.8)
