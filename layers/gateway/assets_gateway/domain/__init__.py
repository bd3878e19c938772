"""Domain: the pure rules (manifest, policy, quota arithmetic, identity, globs, envelope, errors,
policy checks, simulation). No I/O here: nothing imports boto3, botocore, httpx or Powertools."""
