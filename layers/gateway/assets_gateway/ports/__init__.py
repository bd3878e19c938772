"""Ports: the protocols the doors call through and the value types that cross them. Adapters
implement them; doors depend on them, never on an adapter."""
