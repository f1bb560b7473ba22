"""Request and response models of the HTTP API: one module per router, so that a request
builds only its own router's models (base: what they share; errors: every route's)."""
