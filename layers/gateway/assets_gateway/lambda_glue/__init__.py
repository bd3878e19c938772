"""Lambda glue: API Gateway events to replies (rest), settings from the environment, Powertools
idempotency, and the wiring that builds every adapter once per function instance."""
