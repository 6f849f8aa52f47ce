"""The paper's maths: the partial convolution, the U-Net, VGG16 features and the loss (Eq. 1-7)."""
