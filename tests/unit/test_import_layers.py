"""The import graph keeps the layers honest (STYLE 12, issue 13).

Every `import` and `from … import` of our sources is read with `ast` (imports inside functions
and under `TYPE_CHECKING` included: a type is a dependency too) and held to five rules:

(a) pure layers: `assets_gateway.domain` and `assets_gateway.ports` import no AWS, HTTP,
    Powertools or X-Ray library; `assets_gateway_common` imports the standard library only;
(b) no layer imports a higher one (common < domain < ports < adapters, doors < lambda_glue <
    functions), doors never import adapters nor adapters doors, every module of the core lives
    in a layer's folder, and nothing that ships to Lambda imports the client or the local stack;
(c) the pipeline doors (session, S3, deploy, and the steps they share in doors.gate) import only
    domain, ports, common and doors.gate of ours, and no I/O library;
(d) the team client (`client/src/assets_gateway_client`) imports nothing of the gateway's core
    or local stack, none of Powertools, pydantic, msgspec or moto, and no third-party package
    its `client/pyproject.toml` does not declare;
(e) the Lambda layer's `requirements.txt` lists only packages a module of the layer imports.

Each rule is shown to fail on a small tree written to tmp_path; then the real tree must pass.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from gateway_local.aws_resources import REPO_ROOT

# Libraries that do I/O (or stand for it): the pure layers and doors import none of them.
IO_LIBRARIES = frozenset({"boto3", "botocore", "httpx", "aws_lambda_powertools", "aws_xray_sdk"})
# What the team client never imports, whatever its pyproject says.
NOT_FOR_THE_CLIENT = frozenset(
    {"assets_gateway", "gateway_local", "aws_lambda_powertools", "pydantic", "msgspec", "moto"}
)
OUR_PACKAGES = frozenset(
    {
        "assets_gateway",
        "assets_gateway_common",
        "assets_gateway_client",
        "gateway_local",
        "functions",
    }
)
RANK = {"common": 0, "domain": 1, "ports": 2, "adapters": 3, "doors": 3, "lambda_glue": 4}
RANK["functions"] = 5
CORE_LAYERS = ("domain", "ports", "adapters", "doors", "lambda_glue")
PURE_DOORS = frozenset(
    {
        "assets_gateway.doors.session",
        "assets_gateway.doors.s3",
        "assets_gateway.doors.deploy",
        "assets_gateway.doors.gate",
    }
)
# The steps the pipeline doors share: pure itself (it is one of PURE_DOORS).
SHARED_DOOR_STEPS = "assets_gateway.doors.gate"


@dataclass(frozen=True)
class Sources:
    """Where a tree keeps what the rules read."""

    root: Path

    @property
    def layer(self) -> Path:
        return self.root / "layers" / "gateway"

    @property
    def layer_requirements(self) -> Path:
        return self.layer / "requirements.txt"

    @property
    def functions(self) -> Path:
        return self.root / "functions"

    @property
    def client(self) -> Path:
        return self.root / "client" / "src" / "assets_gateway_client"

    @property
    def client_pyproject(self) -> Path:
        return self.root / "client" / "pyproject.toml"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    imported: str  # what it imports (a module, or the package a name was taken from)
    line: int


@dataclass(frozen=True)
class Violation:
    rule: str
    module: str
    imported: str
    message: str

    def __str__(self) -> str:
        return f"({self.rule}) {self.message}"


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(directory: Path, base: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(directory.rglob("*.py")):
        yield module_name(path, base), path


def imports_of(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, `level - 1` packages up
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base == "__future__":
                continue
            for alias in node.names:
                # `from package import module` depends on the module; else on the package.
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "assets_gateway_common":
        return "common"
    if parts[0] == "assets_gateway" and len(parts) > 1 and parts[1] in CORE_LAYERS:
        return parts[1]
    if parts[0] == "functions":
        return "functions"
    return None


def own_module(imported: str, known: set[str]) -> str:
    """`a.b.c` as the module of ours it names: itself, or the package holding the name `c`."""
    return imported if imported in known else imported.rpartition(".")[0]


def top(imported: str) -> str:
    return imported.split(".", maxsplit=1)[0]


def is_stdlib(imported: str) -> bool:
    return top(imported) in sys.stdlib_module_names


def normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


@cache
def installed() -> dict[str, frozenset[str]]:
    """The distributions that provide each top-level import name, as installed here."""
    return {
        name: frozenset(map(normalised, distributions))
        for name, distributions in packages_distributions().items()
    }


def distributions_of(import_name: str) -> frozenset[str]:
    return installed().get(import_name, frozenset())


def requirement_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#")[0])
        if match:
            names.append(normalised(match[1]))
    return names


def layer_violations(imports: list[Import], known: set[str]) -> Iterator[Violation]:
    """Rules (a), (b) and (c) over the core, the common helpers and the functions."""
    for found in imports:
        layer = layer_of(found.module)
        target = found.imported
        named = f"{found.module} imports {target} (line {found.line})"
        if layer is None:
            continue  # the package's own __init__ (a module outside the layers: `misplaced`)
        ours = top(target) in OUR_PACKAGES
        if layer == "common" and not (is_stdlib(target) or top(target) == "assets_gateway_common"):
            why = "assets_gateway_common (shipped in the client too) imports the stdlib only"
            yield Violation("a", found.module, target, f"{named}: {why}")
        elif layer in ("domain", "ports") and top(target) in IO_LIBRARIES:
            why = f"{layer} is pure: no AWS, HTTP, Powertools or X-Ray library"
            yield Violation("a", found.module, target, f"{named}: {why}")
        if top(target) in ("assets_gateway_client", "gateway_local"):
            why = "what ships to Lambda never imports the team client or the local stack"
            yield Violation("b", found.module, target, f"{named}: {why}")
        elif ours:
            other = layer_of(own_module(target, known))
            if other is not None and (
                RANK[other] > RANK[layer] or {layer, other} == {"doors", "adapters"}
            ):
                why = f"{layer} may not import {other}"
                yield Violation("b", found.module, target, f"{named}: {why}")
        if found.module in PURE_DOORS:
            module = own_module(target, known) if ours else None
            other = layer_of(module) if module else None
            shared = module == SHARED_DOOR_STEPS
            allowed = shared or other in ("common", "domain", "ports")
            if (ours and not allowed) or top(target) in IO_LIBRARIES:
                why = "this door imports only domain, ports and common of ours, and no I/O library"
                yield Violation("c", found.module, target, f"{named}: {why}")


def misplaced(modules: list[str]) -> Iterator[Violation]:
    """Rule (b): every module of the core lives in a layer's folder."""
    for module in modules:
        if module != "assets_gateway" and layer_of(module) is None:
            why = f"{module} lives in no layer's folder ({', '.join(CORE_LAYERS)})"
            yield Violation("b", module, "", why)


def client_violations(imports: list[Import], declared: set[str]) -> Iterator[Violation]:
    """Rule (d)."""
    for found in imports:
        name = top(found.imported)
        named = f"{found.module} imports {found.imported} (line {found.line})"
        if name in NOT_FOR_THE_CLIENT:
            why = "the team client never needs the gateway's core, its local stack or its libraries"
            yield Violation("d", found.module, found.imported, f"{named}: {why}")
        elif (
            not (is_stdlib(name) or name in {"assets_gateway_client", "assets_gateway_common"})
            and not distributions_of(name) & declared
        ):
            why = "no dependency of client/pyproject.toml provides it"
            yield Violation("d", found.module, found.imported, f"{named}: {why}")


def requirement_violations(sources: Sources, imports: list[Import]) -> Iterator[Violation]:
    """Rule (e)."""
    used = set().union(*(distributions_of(top(found.imported)) for found in imports))
    listed = requirement_names(sources.layer_requirements.read_text().splitlines())
    where = sources.layer_requirements.relative_to(sources.root).as_posix()
    for name in listed:
        if name not in used:
            why = f"{where} lists {name}, which no module of the layer imports"
            yield Violation("e", where, name, why)


def violations(sources: Sources) -> list[Violation]:
    core = [
        *modules_under(sources.layer / "assets_gateway", sources.layer),
        *modules_under(sources.layer / "assets_gateway_common", sources.layer),
    ]
    functions = list(modules_under(sources.functions, sources.root))
    known = {module for module, _ in core + functions}
    core_imports = [found for module, path in core for found in imports_of(module, path)]
    function_imports = [found for module, path in functions for found in imports_of(module, path)]
    client = modules_under(sources.client, sources.client.parent)
    client_imports = [found for module, path in client for found in imports_of(module, path)]
    pyproject = tomllib.loads(sources.client_pyproject.read_text())
    declared = set(requirement_names(pyproject["project"]["dependencies"]))
    return [
        *misplaced([module for module, _ in core]),
        *layer_violations(core_imports + function_imports, known),
        *client_violations(client_imports, declared),
        *requirement_violations(sources, core_imports),
    ]


# -- each rule fails on a tree that breaks it ------------------------------------------------

CLEAN_TREE = {
    "layers/gateway/requirements.txt": "boto3==1.0\npydantic==2.0  # models\n"
    "aws-lambda-powertools[tracer]==3.0\n",
    "layers/gateway/assets_gateway/__init__.py": "",
    "layers/gateway/assets_gateway/domain/__init__.py": "",
    "layers/gateway/assets_gateway/domain/rules.py": "import json\nimport pydantic\n",
    "layers/gateway/assets_gateway/ports/__init__.py": "",
    "layers/gateway/assets_gateway/ports/store.py": "from assets_gateway.domain import rules\n",
    "layers/gateway/assets_gateway/adapters/__init__.py": "",
    "layers/gateway/assets_gateway/adapters/store.py": "import boto3\n"
    "from assets_gateway.ports.store import Store\n",
    "layers/gateway/assets_gateway/doors/__init__.py": "",
    "layers/gateway/assets_gateway/doors/session.py": "from assets_gateway.ports import store\n"
    "from assets_gateway_common.json_pointer import json_pointer\n",
    "layers/gateway/assets_gateway/doors/s3.py": "from ..ports.store import Store\n"
    "from assets_gateway.domain.rules import Rule\n",
    "layers/gateway/assets_gateway/doors/admin.py": "from assets_gateway.doors.session import x\n",
    "layers/gateway/assets_gateway/lambda_glue/__init__.py": "",
    "layers/gateway/assets_gateway/lambda_glue/wiring.py": "import aws_lambda_powertools\n"
    "from assets_gateway.adapters.store import S\nfrom assets_gateway.doors.session import D\n",
    "layers/gateway/assets_gateway_common/__init__.py": "",
    "layers/gateway/assets_gateway_common/json_pointer.py": "import re\n",
    "functions/api/app.py": "from assets_gateway.lambda_glue.wiring import build\n",
    "client/pyproject.toml": '[project]\nname = "c"\ndependencies = ["httpx>=0.27", "boto3"]\n',
    "client/src/assets_gateway_client/__init__.py": "",
    "client/src/assets_gateway_client/cli.py": "import argparse\nimport httpx\nimport boto3\n"
    "from assets_gateway_client import upload\n"
    "from assets_gateway_common.json_pointer import pointer_tokens\n",
}

CORE = "layers/gateway/assets_gateway/"
CLIENT_CLI = "client/src/assets_gateway_client/cli.py"
BROKEN = {
    # rule: (file, source added to it, the module and import the message must name)
    "a: domain imports botocore": (
        CORE + "domain/rules.py",
        "from botocore.exceptions import ClientError\n",
        ("assets_gateway.domain.rules", "botocore.exceptions.ClientError"),
    ),
    "a: ports import httpx": (
        CORE + "ports/store.py",
        "import httpx\n",
        ("assets_gateway.ports.store", "httpx"),
    ),
    "a: domain imports X-Ray, even for types": (
        CORE + "domain/rules.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import aws_xray_sdk\n",
        ("assets_gateway.domain.rules", "aws_xray_sdk"),
    ),
    "a: common imports a third-party package": (
        "layers/gateway/assets_gateway_common/json_pointer.py",
        "import pydantic\n",
        ("assets_gateway_common.json_pointer", "pydantic"),
    ),
    "b: domain imports ports": (
        CORE + "domain/rules.py",
        "from assets_gateway.ports.store import Store\n",
        ("assets_gateway.domain.rules", "assets_gateway.ports.store.Store"),
    ),
    "b: ports import an adapter inside a function": (
        CORE + "ports/store.py",
        "def later():\n    from assets_gateway.adapters import store\n",
        ("assets_gateway.ports.store", "assets_gateway.adapters.store"),
    ),
    "b: a door imports an adapter": (
        CORE + "doors/admin.py",
        "from assets_gateway.adapters.store import S3Store\n",
        ("assets_gateway.doors.admin", "assets_gateway.adapters.store.S3Store"),
    ),
    "b: an adapter imports a door": (
        CORE + "adapters/store.py",
        "import assets_gateway.doors.session\n",
        ("assets_gateway.adapters.store", "assets_gateway.doors.session"),
    ),
    "b: the glue imports a function": (
        CORE + "lambda_glue/wiring.py",
        "from functions.api.app import app\n",
        ("assets_gateway.lambda_glue.wiring", "functions.api.app.app"),
    ),
    "b: a function imports the local stack": (
        "functions/api/app.py",
        "from gateway_local.demo import demo_policy\n",
        ("functions.api.app", "gateway_local.demo.demo_policy"),
    ),
    "b: a module outside every layer": (CORE + "helpers.py", "", ("assets_gateway.helpers", "")),
    "c: the session door imports another door": (
        CORE + "doors/session.py",
        "from assets_gateway.doors.admin import AdminService\n",
        ("assets_gateway.doors.session", "assets_gateway.doors.admin.AdminService"),
    ),
    "c: the S3 door imports botocore": (
        CORE + "doors/s3.py",
        "from botocore.exceptions import ClientError\n",
        ("assets_gateway.doors.s3", "botocore.exceptions.ClientError"),
    ),
    "c: the deploy door imports the session door": (
        CORE + "doors/deploy.py",
        "from assets_gateway.doors.session import SessionService\n",
        ("assets_gateway.doors.deploy", "assets_gateway.doors.session.SessionService"),
    ),
    "c: the shared door steps import httpx": (
        CORE + "doors/gate.py",
        "import httpx\n",
        ("assets_gateway.doors.gate", "httpx"),
    ),
    "d: the client imports the core": (
        CLIENT_CLI,
        "from assets_gateway.domain.rules import Rule\n",
        ("assets_gateway_client.cli", "assets_gateway.domain.rules.Rule"),
    ),
    "d: the client imports the local stack": (
        CLIENT_CLI,
        "import gateway_local.demo\n",
        ("assets_gateway_client.cli", "gateway_local.demo"),
    ),
    "d: the client imports pydantic": (
        CLIENT_CLI,
        "from pydantic import BaseModel\n",
        ("assets_gateway_client.cli", "pydantic.BaseModel"),
    ),
    "d: the client imports msgspec": (
        CLIENT_CLI,
        "import msgspec\n",
        ("assets_gateway_client.cli", "msgspec"),
    ),
    "d: the client imports Powertools": (
        CLIENT_CLI,
        "from aws_lambda_powertools import Logger\n",
        ("assets_gateway_client.cli", "aws_lambda_powertools.Logger"),
    ),
    "d: the client imports moto": (
        CLIENT_CLI,
        "import moto\n",
        ("assets_gateway_client.cli", "moto"),
    ),
    "d: the client imports a package it does not declare": (
        CLIENT_CLI,
        "import yaml\n",
        ("assets_gateway_client.cli", "yaml"),
    ),
    "e: the layer lists a package nothing imports": (
        "layers/gateway/requirements.txt",
        "msgspec==0.22.0\n",
        ("layers/gateway/requirements.txt", "msgspec"),
    ),
}


def write_tree(root: Path, files: dict[str, str]) -> Sources:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Sources(root)


def test_the_clean_tree_breaks_no_rule(tmp_path: Path) -> None:
    assert violations(write_tree(tmp_path, CLEAN_TREE)) == []


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_fails_and_names_the_module_and_the_import(tmp_path: Path, case: str) -> None:
    name, added, (module, imported) = BROKEN[case]
    files = dict(CLEAN_TREE)
    files[name] = files.get(name, "") + added
    found = violations(write_tree(tmp_path, files))
    assert [(v.rule, v.module, v.imported) for v in found] == [(case[0], module, imported)]
    assert module in str(found[0])
    assert imported in str(found[0])


# -- the real tree --------------------------------------------------------------------------


def test_the_real_tree_keeps_its_layers() -> None:
    found = violations(Sources(REPO_ROOT))
    assert found == [], "\n".join(map(str, found))


def test_the_real_tree_is_read_whole() -> None:
    """The rules see every layer and the client (a wrong path would make them pass on nothing)."""
    sources = Sources(REPO_ROOT)
    core = {module for module, _ in modules_under(sources.layer / "assets_gateway", sources.layer)}
    assert {layer_of(module) for module in core} >= set(CORE_LAYERS)
    assert "assets_gateway.doors.session" in core
    assert "assets_gateway.doors.s3" in core
    assert len(list(modules_under(sources.functions, REPO_ROOT))) == 4
    assert any(True for _ in modules_under(sources.client, sources.client.parent))
    assert requirement_names(sources.layer_requirements.read_text().splitlines())
