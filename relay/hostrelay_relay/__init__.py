"""hostrelay relay: verifies signed jobs from the control plane and runs them on this host."""

__version__ = "0.1.0"
