"""Image-quality metrics: l1/PSNR/SSIM, LPIPS, FID and Inception Score, and jittable batch
scoring."""
