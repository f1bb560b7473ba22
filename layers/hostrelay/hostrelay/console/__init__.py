"""The operators' web console: static assets served by the API itself, same origin."""
