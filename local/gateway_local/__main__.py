"""`make run`: the whole gateway on 127.0.0.1 with demo data, until Ctrl-C.

The terminal shows the banner, then one line per request; the functions' JSON records go to
`<GATEWAY_LOCAL_DIR>/logs/` (default `.local/logs/`), next to `stack.json`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from gateway_local.aws_resources import local_dir as configured_local_dir
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_SCRIPT
from gateway_local.request_log import FunctionLogs
from gateway_local.stack import DEFAULT_GATEWAY_PORT, LocalStack, StackOptions

# A static site of one page, deployed as an assets-only Worker.
SITE = '"${TMPDIR:-/tmp}/hello"'
DEPLOY_COMMANDS = (
    f"mkdir -p {SITE} && echo '<h1>hello</h1>' > {SITE}/index.html\n"
    f"  .venv/bin/assets-gateway deploy {SITE} --account {DEMO_ACCOUNT_ID} --script web-hello"
)


def instructions(stack: LocalStack, stack_file: Path) -> str:
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
  connection details                 {stack_file}
  JSON logs (one file per function)  {stack_file.parent / "logs"}

Identities: web-deployer (team web), docs-ci (team docs), platform-admin (admin door), outsider;
their access keys are in {stack_file.name}.

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
  echo '{manifest}' \\
    | .venv/bin/python -m gateway_local.put_manifest - --team docs --script docs

Deploy a Worker through the gateway as the web team, with no Cloudflare token anywhere:
  export ASSETS_GATEWAY_URL={stack.base_url} CLOUDFLARE_API_URL={stack.cloudflare_url} \\
         AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID={web.access_key_id} \\
         AWS_SECRET_ACCESS_KEY={web.secret_access_key}
  {DEPLOY_COMMANDS}
  # with Node: in a wrangler project named web-* whose account_id is {DEMO_ACCOUNT_ID}
  .venv/bin/assets-gateway wrangler -- deploy

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
    local_dir = configured_local_dir()
    terminal = sys.stdout
    # Before the functions are imported: Powertools' handlers write to the sys.stdout of their
    # creation, its metrics print to the current one. Both land in the functions' log files.
    logs = FunctionLogs(local_dir / "logs")
    sys.stdout = logs
    logging.basicConfig(
        stream=logs, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    try:
        return serve(port, local_dir / "stack.json", terminal)
    finally:
        sys.stdout = terminal
        logs.close()


def serve(port: int, stack_file: Path, terminal: TextIO) -> int:
    """Run the stack until SIGINT or SIGTERM, talking to the person on `terminal`."""
    try:
        stack = LocalStack(StackOptions(gateway_port=port, request_log=terminal))
    except OSError as exc:
        print(
            f"cannot start the local stack: {exc} (is port {port} in use? set GATEWAY_PORT)",
            file=terminal,
        )
        return 1
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        stack.start_polling()
        stack.write_description(stack_file)
        print(instructions(stack, stack_file), file=terminal, flush=True)
        stopping.wait()
    finally:
        print("stopping…", file=terminal, flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
