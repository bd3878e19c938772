"""`make run`: the whole gateway on 127.0.0.1 with demo data, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import sys
import threading

from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_SCRIPT
from gateway_local.stack import DEFAULT_GATEWAY_PORT, LocalStack, StackOptions

STACK_FILE = REPO_ROOT / ".local" / "stack.json"


def instructions(stack: LocalStack) -> str:
    web = stack.options.identities["web-deployer"]
    admin = stack.options.identities["platform-admin"]
    session_url = (
        f"{stack.base_url}/accounts/{DEMO_ACCOUNT_ID}/workers/scripts/{WEB_SCRIPT}"
        "/assets-upload-session"
    )
    manifest = '{"manifest":{"/index.html":{"hash":"0de3dd5df907418e9730fd2bd747bd5e","size":17}}}'
    return f"""
assets-gateway is running locally
  gateway (SigV4, like API Gateway)  {stack.base_url}
  Cloudflare emulator                {stack.cloudflare_url}
  AWS (moto server)                  {stack.moto.endpoint_url}
  connection details                 {STACK_FILE}

Identities: web-deployer (team web), docs-ci (team docs), platform-admin (admin door), outsider;
their access keys are in {STACK_FILE.name}.

curl, signed with SigV4 as the web team:
  curl --aws-sigv4 "aws:amz:us-east-1:execute-api" \\
       --user "{web.access_key_id}:{web.secret_access_key}" \\
       -H "Content-Type: application/json" \\
       -d '{manifest}' \\
       {session_url}

The official Cloudflare Python SDK (only the base URL and the httpx client change):
  import boto3, cloudflare, httpx
  from assets_gateway_client.sigv4 import SigV4Auth
  aws = boto3.Session(aws_access_key_id="{web.access_key_id}",
                      aws_secret_access_key="{web.secret_access_key}", region_name="us-east-1")
  cf = cloudflare.Cloudflare(api_token="unused", base_url="{stack.base_url}",
                             http_client=httpx.Client(auth=SigV4Auth.from_session(aws)))
  session = cf.workers.scripts.assets.upload.create(
      "{WEB_SCRIPT}", account_id="{DEMO_ACCOUNT_ID}",
      manifest={{"/index.html": {{"hash": "0de3dd5df907418e9730fd2bd747bd5e", "size": 17}}}})
  print(session.buckets, session.jwt)

Plain httpx signed by botocore:
  httpx.post("{session_url}", json={{"manifest": {{}}}}, auth=SigV4Auth.from_session(aws))

The S3 door: drop a manifest into the bucket, get the result object back:
  .venv/bin/python -m gateway_local.put_manifest manifest.json --team docs --script docs

The admin door, as platform-admin (policy, explain, usage, suspend, kill switch):
  export ASSETS_GATEWAY_URL={stack.base_url} AWS_REGION=us-east-1 \\
         AWS_ACCESS_KEY_ID={admin.access_key_id} \\
         AWS_SECRET_ACCESS_KEY={admin.secret_access_key}
  .venv/bin/assets-gateway admin policy get
  .venv/bin/assets-gateway admin usage
  .venv/bin/assets-gateway admin suspend docs --reason "trying it"

Ctrl-C stops everything.
"""


def main() -> int:
    port = int(os.environ.get("GATEWAY_PORT", DEFAULT_GATEWAY_PORT))
    try:
        stack = LocalStack(StackOptions(gateway_port=port))
    except OSError as exc:
        print(f"cannot start the local stack: {exc} (is port {port} in use? set GATEWAY_PORT)")
        return 1
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        stack.start_polling()
        stack.write_description(STACK_FILE)
        print(instructions(stack), flush=True)
        stopping.wait()
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
