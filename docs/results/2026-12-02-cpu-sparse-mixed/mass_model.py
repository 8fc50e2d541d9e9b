#!/usr/bin/env python3
"""Monte Carlo of DataKind::clustered's score model (kv_cache.hpp), used to pick the mixed data's
two q scales before any patlab run: for q scale sigma and rho = 0.8 at 4352 tokens (136 runs of 32),
the mean true mass of the 10 best runs (320 tokens, DuoAttention's streaming cache) and the runs
needed for 90% of the mass. Scores are a run term N(0, rho sigma^2) plus a token term
N(0, (1 - rho) sigma^2). Usage: python3 mass_model.py (numpy; seed 0, 400 draws per sigma)."""
import numpy as np

rng = np.random.default_rng(0)
N, T, RHO = 4352, 32, 0.8
R = N // T
print("sigma  mass of best 10 runs (mean)  runs for 90% (mean; 5th, 50th, 95th percentile)")
for sigma in [1, 2, 3, 4, 5, 6, 8]:
    top10, need = [], []
    for _ in range(400):
        s = np.repeat(rng.normal(0, np.sqrt(RHO) * sigma, R), T) + rng.normal(0, np.sqrt(1 - RHO) * sigma, N)
        p = np.exp(s - s.max())
        p /= p.sum()
        runs = np.sort(p.reshape(R, T).sum(1))[::-1]
        top10.append(runs[:10].sum())
        need.append(np.searchsorted(np.cumsum(runs), 0.9) + 1)
    q = np.percentile(need, [5, 50, 95])
    print(f"{sigma:5}  {np.mean(top10):27.2f}  {np.mean(need):5.1f}; {q[0]:.0f}, {q[1]:.0f}, {q[2]:.0f}")
