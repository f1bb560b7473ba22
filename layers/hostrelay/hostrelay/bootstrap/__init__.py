"""Shell scripts the control plane serves to hosts (enrollment bootstrap)."""
