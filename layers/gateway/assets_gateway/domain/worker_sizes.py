"""The sizes a Worker upload is held to, apart from the upload's parser: the deploy policy's
rules (`max_script_bytes`) are bounded by them, and the session and S3 functions, which load the
policy, must not import the multipart parser to know them (cold start, issue 15)."""

from __future__ import annotations

MIB = 1024 * 1024
# Cloudflare refuses a Worker past 64 MiB uncompressed (and 10 MB compressed on paid plans).
MAX_INFLATED_BYTES = 64 * MIB
