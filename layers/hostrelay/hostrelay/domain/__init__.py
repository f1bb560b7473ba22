"""Domain model of the control plane: jobs, hosts, tokens and the errors they raise."""
