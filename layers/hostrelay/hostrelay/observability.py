"""Powertools Logger, Tracer and Metrics shared by every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(log_uncaught_exceptions=True)
# The libraries the control plane calls through. Patching "all" (the default) also imports
# X-Ray's wrappers of sqlite3, MySQL, aiobotocore, ... at every cold start, for calls we never make.
tracer = Tracer(patch_modules=("botocore", "pynamodb"))
metrics = Metrics()
