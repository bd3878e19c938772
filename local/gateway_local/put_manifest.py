"""Drop a manifest into the local stack's bucket and print the result the S3 door writes.

    .venv/bin/python -m gateway_local.put_manifest manifest.json --team docs --script docs

Reads the connection details `make run` wrote to .local/stack.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from gateway_local.aws_resources import REPO_ROOT, local_aws_session

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STACK_FILE = REPO_ROOT / ".local" / "stack.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help='a JSON file {"manifest": {...}} (or .json.gz)')
    parser.add_argument("--team", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--account", help="Cloudflare account id (default: the demo account)")
    parser.add_argument("--name", help="object name (default: the file's name)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a result")
    args = parser.parse_args(argv)
    if not STACK_FILE.exists():
        print(f"{STACK_FILE} not found: start the local stack with `make run` first")
        return 1
    stack = json.loads(STACK_FILE.read_text())
    bucket = stack["resources"]["manifest_bucket"]
    name = args.name or args.manifest.name
    account = args.account or stack["demo"]["account_id"]
    key = f"incoming/{args.team}/{account}/{args.script}/{name}"
    result_key = "results/" + key.removeprefix("incoming/").removesuffix(".gz")
    s3 = local_aws_session().client("s3", endpoint_url=stack["aws_endpoint_url"])
    previous = _version(s3, bucket, result_key)
    s3.put_object(Bucket=bucket, Key=key, Body=args.manifest.read_bytes())
    print(f"put s3://{bucket}/{key}; waiting for s3://{bucket}/{result_key}", file=sys.stderr)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if (version := _version(s3, bucket, result_key)) not in (None, previous):
            answer = s3.get_object(Bucket=bucket, Key=result_key, VersionId=version)
            print(f"status {answer['Metadata'].get('status')}", file=sys.stderr)
            print(answer["Body"].read().decode())
            return 0
        time.sleep(0.25)
    print("no result yet: is `make run` still running?", file=sys.stderr)
    return 1


def _version(s3: S3Client, bucket: str, key: str) -> str | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key).get("VersionId")
    except ClientError:  # absent (404) until the S3 door writes it
        return None


if __name__ == "__main__":
    sys.exit(main())
