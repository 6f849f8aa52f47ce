"""Evaluation: the paper's Table 1 protocol, its metrics (l1, PSNR, SSIM, FID), the classical
baselines (PatchMatch, Telea, Navier-Stokes), the runners that score each method and the tables."""
