"""HTTP API of the control plane: routers per resource, bearer auth, one error mapping."""
