"""Storage: orbax checkpoints with checksums, loading any trained model, and the .npz and .onnx
exports."""
