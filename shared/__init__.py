"""Code both the agent and the hub import: wire models, naming, settings, rendezvous ranking, errors."""
