"""Lambda glue: what the functions' events hold (api_events, manifest_records), replies and errors
as API Gateway responses (rest), the admin routes, settings from the environment, Powertools
idempotency, and the wiring that builds every adapter and door once per function instance."""
