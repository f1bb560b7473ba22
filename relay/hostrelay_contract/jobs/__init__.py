"""Params and result models of each job type, one module per family."""
