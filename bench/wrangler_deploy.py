"""`wrangler deploy` of a Worker with 1,000 assets: straight to the Cloudflare emulator with a
token, and through the gateway with `assets-gateway wrangler --` (signing proxy → SigV4 API
front → deploy and session functions → emulator), in the same run on the same local stack.

Each run deploys a new Worker (every asset uploaded) and then redeploys it after one file
changed (one asset uploaded, a new version and deployment), alternating the two paths so that
a busy machine weighs on both alike. Prints the median wall time of each path and their ratio;
asserts nothing.

    .venv/bin/python bench/wrangler_deploy.py [--assets N] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gateway_local.aws_resources import REPO_ROOT
from gateway_local.demo import DEMO_ACCOUNT_ID, WEB_DEPLOYER
from gateway_local.stack import LocalStack, StackOptions

sys.path.insert(0, str(REPO_ROOT / "tests"))
from wrangler_cli import WRANGLER, ConnectionTrap, offline_env, run_wrangler

CLIENT = REPO_ROOT / ".venv" / "bin" / "assets-gateway"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The in-process functions log JSON and EMF metrics to stdout on every request."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def make_project(root: Path, name: str, assets: int) -> None:
    (root / "public").mkdir(parents=True)
    for index in range(assets):
        folder = root / "public" / f"section-{index % 10}"
        folder.mkdir(exist_ok=True)
        (folder / f"page-{index}.html").write_text(f"<h1>{name} page {index}</h1>\n" * 20)
    write_worker(root, name)


def write_worker(root: Path, name: str, assets: str = "public") -> None:
    """The Worker's script and `wrangler.jsonc`, serving the assets folder `root / assets`."""
    (root / "index.js").write_text(
        "export default { fetch(request, env) { return env.ASSETS.fetch(request); } };\n"
    )
    (root / "wrangler.jsonc").write_text(
        f'{{"name": "{name}", "main": "index.js", "compatibility_date": "2025-01-01", '
        f'"assets": {{"directory": "{assets}", "binding": "ASSETS"}}}}\n'
    )


def straight_to_emulator(stack: LocalStack, home: Path, trap: ConnectionTrap) -> dict[str, str]:
    """wrangler's whole environment for a run straight at the emulator, with the org's token,
    kept off the internet (`trap`), with `home` as its home."""
    return offline_env(
        api_base_url=stack.cloudflare_url,
        api_token=stack.cloudflare_token,
        account_id=DEMO_ACCOUNT_ID,
        home=home,
        proxy_url=trap.url,
    )


def through_gateway(stack: LocalStack) -> tuple[dict[str, str], list[str]]:
    """What a team's wrangler run through the gateway adds to its environment (the gateway's
    URL, Cloudflare's for the uploads, the team's AWS identity, no Cloudflare token), and the
    launcher that runs it: `assets-gateway wrangler --`."""
    env = {
        "ASSETS_GATEWAY_URL": stack.base_url,
        "CLOUDFLARE_API_URL": stack.cloudflare_url,
        "AWS_ACCESS_KEY_ID": WEB_DEPLOYER.access_key_id,
        "AWS_SECRET_ACCESS_KEY": WEB_DEPLOYER.secret_access_key,
        "AWS_REGION": "us-east-1",
        "CLOUDFLARE_API_TOKEN": "",
    }
    return env, [str(CLIENT), "wrangler", "--quiet", "--wrangler", str(WRANGLER), "--"]


def machine_line() -> str:
    """The machine, the Python and the pinned wrangler the figures were measured with."""
    version = json.loads((REPO_ROOT / "node_modules" / "wrangler" / "package.json").read_text())
    return (
        f"machine: {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, wrangler {version['version']}"
    )


def timed(deploy: Callable[[], int]) -> float:
    started = time.perf_counter()
    code = deploy()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"wrangler exited {code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine_line())
    with (
        quiet(),
        tempfile.TemporaryDirectory() as scratch,
        contextlib.closing(ConnectionTrap()) as trap,
    ):
        stack = LocalStack(StackOptions(gateway_port=0, policy_cache_seconds=60))
        try:
            times: dict[str, list[float]] = {"direct": [], "gateway": []}
            redeploys: dict[str, list[float]] = {"direct": [], "gateway": []}
            for run in range(args.runs):
                for path in ("direct", "gateway"):
                    root = Path(scratch) / f"{path}-{run}"
                    home = root / "home"
                    home.mkdir(parents=True)
                    make_project(root / "site", f"web-bench-{path}-{run}", args.assets)
                    env = straight_to_emulator(stack, home, trap)
                    launcher: list[str] = []
                    if path == "gateway":
                        gateway_env, launcher = through_gateway(stack)
                        env |= gateway_env

                    def deploy(
                        root: Path = root, env: dict[str, str] = env, launcher: list[str] = launcher
                    ) -> int:
                        result = run_wrangler(
                            ["deploy"], cwd=root / "site", env=env, launcher=launcher
                        )
                        return result.returncode

                    times[path].append(timed(deploy))
                    (root / "site" / "public" / "section-1" / "page-1.html").write_text("edited\n")
                    redeploys[path].append(timed(deploy))
                    stack.clear_quotas()
        finally:
            stack.stop()
        if trap.requests:
            raise SystemExit(f"wrangler reached beyond loopback: {trap.requests}")
    for label, table in (("deploy (new Worker)", times), ("redeploy (1 file)", redeploys)):
        direct, gateway = statistics.median(table["direct"]), statistics.median(table["gateway"])
        print(
            f"wrangler {label}, {args.assets} assets, median of {args.runs}: "
            f"direct {direct:.2f} s, through the gateway {gateway:.2f} s, "
            f"ratio {gateway / direct:.2f}"
        )


if __name__ == "__main__":
    main()
