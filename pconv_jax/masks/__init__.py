"""Hole masks: the NVIDIA test-set protocol, the training-mask generator, raw-mask augmentation and
test-set construction (1 = known pixel in every array the model sees; white = hole in files);
and coverage masks of gridded data on the sphere (`sphere`, `coverage`, `stations`)."""
