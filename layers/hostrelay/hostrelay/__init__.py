"""hostrelay control plane: the code every Lambda function shares, shipped as a layer."""

__version__ = "0.1.0"
