"""Domain: the pure rules (request bodies, manifest, manifest objects, policy, quota arithmetic,
identity, globs, envelope, errors, policy checks, simulation, redaction). No I/O here: nothing
imports boto3, botocore, httpx or Powertools (tests/unit/test_import_layers.py)."""
