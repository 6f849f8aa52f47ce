"""`pconv convert`: PConv U-Nets trained by other projects, read from their PyTorch files."""
