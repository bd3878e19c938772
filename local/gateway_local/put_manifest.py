"""Drop a manifest into the local stack's bucket and print the result the S3 door writes.

    .venv/bin/python -m gateway_local.put_manifest manifest.json --team docs --script docs
    echo '{"manifest": {...}}' | .venv/bin/python -m gateway_local.put_manifest - --team docs ...

Reads the connection details `make run` wrote to .local/stack.json (GATEWAY_LOCAL_DIR's, when
set). The object is tagged with its writer, as the bucket policy demands on AWS (moto enforces no
bucket policy): by default the demo identity of the team (`--as NAME` picks another from
stack.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from assets_gateway.domain.identity import normalise_principal
from assets_gateway.doors.s3 import WRITER_TAG
from gateway_local.aws_resources import local_aws_session, local_dir

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TEAM_IDENTITIES = {"web": "web-deployer", "docs": "docs-ci"}


def writer_tagging(principal_arn: str) -> str:
    """PutObject's Tagging for an upload by `principal_arn`: what S3 would see as
    `${aws:PrincipalArn}` (a role session's is its role's ARN)."""
    return urlencode({WRITER_TAG: normalise_principal(principal_arn)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "manifest", help='a JSON file {"manifest": {...}} (or .json.gz); "-" reads standard input'
    )
    parser.add_argument("--team", required=True)
    parser.add_argument("--script", required=True)
    parser.add_argument("--account", help="Cloudflare account id (default: the demo account)")
    parser.add_argument(
        "--name", help="object name (default: the file's name; manifest.json from stdin)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a result")
    parser.add_argument("--as", dest="writer", help="identity in stack.json that uploads")
    args = parser.parse_args(argv)
    stack_file = local_dir() / "stack.json"
    if not stack_file.exists():
        print(f"{stack_file} not found: start the local stack with `make run` first")
        return 1
    stack = json.loads(stack_file.read_text())
    bucket = stack["resources"]["manifest_bucket"]
    from_stdin = args.manifest == "-"
    body = sys.stdin.buffer.read() if from_stdin else Path(args.manifest).read_bytes()
    name = args.name or ("manifest.json" if from_stdin else Path(args.manifest).name)
    account = args.account or stack["demo"]["account_id"]
    key = f"incoming/{args.team}/{account}/{args.script}/{name}"
    result_key = "results/" + key.removeprefix("incoming/").removesuffix(".gz")
    s3 = local_aws_session().client("s3", endpoint_url=stack["aws_endpoint_url"])
    writer = args.writer or TEAM_IDENTITIES.get(args.team, "")
    if writer not in stack["identities"]:
        print(f"--as: name one of {sorted(stack['identities'])}", file=sys.stderr)
        return 1
    tagging = writer_tagging(stack["identities"][writer]["principal_arn"])
    previous = _version(s3, bucket, result_key)
    s3.put_object(Bucket=bucket, Key=key, Body=body, Tagging=tagging)
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
