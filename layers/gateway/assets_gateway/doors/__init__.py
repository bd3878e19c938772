"""Doors: the three ways in (the session pipeline, the S3 manifest door, the admin door). They
use the domain and the ports only; wiring hands them their adapters."""
