"""Adapters: one module per AWS service or upstream, each implementing a port and translating its
own errors into the domain's or the port's (DynamoDB, Secrets Manager, S3, SQS, EventBridge, the
audit log, Cloudflare over httpx)."""
