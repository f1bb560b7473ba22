"""Isolated command execution for `exec` jobs: Linux namespaces, cgroups v1/v2, output pumping."""
