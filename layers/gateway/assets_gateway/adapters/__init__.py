"""Adapters: one module per AWS service or upstream, each translating its own errors into the
domain's (DynamoDB, Secrets Manager, S3, the audit log, Cloudflare over httpx)."""
