"""Self-hosted inventory sources (Authentik, Kubernetes), shared by the relay and the cloud."""
