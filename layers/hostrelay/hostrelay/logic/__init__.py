"""Business rules of the control plane, independent of Lambda event shapes."""
