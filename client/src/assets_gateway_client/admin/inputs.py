"""What the admin commands read locally: policy files (YAML or JSON, duplicate keys refused),
manifests, instants and versions, the request bodies built from the command line, and where a
JSON pointer of the gateway's answer lands in the file it is about."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from assets_gateway_client.console import UsageError
from assets_gateway_common.json_pointer import pointer_tokens

__all__ = [
    "QUOTA_OPTIONS",
    "PolicySource",
    "edited_version",
    "explain_body",
    "grant_body",
    "load_manifest_text",
    "load_policy_text",
    "parse_instant",
    "pointer_line",
    "read_text",
    "version_tag",
]


QUOTA_OPTIONS = ("sessions_per_minute", "sessions_per_day", "entries_per_day", "bytes_per_day")


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing duplicate keys (a second `web:` would silently replace the
    first team) and keeping timestamps as the text written (JSON has no dates)."""


def _construct_unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable: construct_mapping reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_unique_mapping)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)


def read_text(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from error


def _ensure_json_ready(document: Any, name: str) -> None:
    """The document must travel as strict JSON: no NaN/Infinity, no dates, bytes or sets."""
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{name} holds something JSON cannot carry: {error}") from error


def load_policy_text(text: str, name: str) -> dict[str, Any]:
    """The policy document in `text` (JSON when `name` ends with .json, else YAML)."""
    try:
        document = _load_json(text) if name.lower().endswith(".json") else _load_yaml(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{name} line {error.lineno} column {error.colno}: {error.msg}") from error
    except (ValueError, yaml.YAMLError) as error:
        raise UsageError(f"{name}: {error}") from error
    if not isinstance(document, dict):
        raise UsageError(
            f"{name} must hold the policy document, a mapping with 'teams' "
            f"(found {type(document).__name__})"
        )
    if "policy" in document and "teams" not in document:
        raise UsageError(
            f"{name} looks like the output of `policy get --json`; the file must hold the "
            "policy document itself (`assets-gateway admin policy get` prints it)"
        )
    _ensure_json_ready(document, name)
    return document


def load_manifest_text(text: str, name: str) -> dict[str, Any]:
    """A manifest from JSON: `{"manifest": {...}}` (what `upload --manifest-only` writes) or the
    bare `{"/path": {"hash", "size"}}` object."""
    try:
        document = _load_json(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{name} line {error.lineno} column {error.colno}: {error.msg}") from error
    except ValueError as error:
        raise UsageError(f"{name}: {error}") from error
    if isinstance(document, dict) and set(document) == {"manifest"}:
        document = document["manifest"]
    if not isinstance(document, dict):
        raise UsageError(f'{name} must hold a manifest object or {{"manifest": {{...}}}}')
    return document


def pointer_line(text: str, pointer: str) -> int | None:
    """The 1-based line of `text` (YAML or JSON) where the JSON pointer's target is written, or
    of its deepest existing parent when the target itself is missing; None if unreadable."""
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for token in pointer_tokens(pointer):
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (key, value)
                    for key, value in node.value
                    if isinstance(key, yaml.ScalarNode) and key.value == token
                ),
                None,
            )
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and token.isdigit():
            if int(token) >= len(node.value):
                break
            node = node.value[int(token)]
            line = node.start_mark.line + 1
        else:
            break
    return line


@dataclass(frozen=True)
class PolicySource:
    """A policy file as read: its name, text and document."""

    name: str
    text: str
    document: dict[str, Any]

    @classmethod
    def read(cls, path: str) -> PolicySource:
        name = "stdin" if path == "-" else path
        text = read_text(path)
        return cls(name, text, load_policy_text(text, name))

    def locate(self, pointer: str) -> str | None:
        """Where a pointer into the request body (`/policy/...`) lands in this file."""
        if pointer != "/policy" and not pointer.startswith("/policy/"):
            return None
        line = pointer_line(self.text, pointer.removeprefix("/policy"))
        return f"{self.name} line {line}" if line is not None else None


# `90m`, `6h`, `7d`: that long before now (examples and scripts that never go stale).
_AGO = re.compile(r"^(\d{1,6})\s*([mhd])$")
_AGO_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_instant(text: str, option: str, now: datetime | None = None) -> str:
    """An ISO 8601 instant as the gateway wants it (UTC, `Z`); a time without zone is UTC.
    Given `now`, a duration such as `6h` or `7d` also reads as that long before `now`."""
    ago = _AGO.match(text.strip()) if now is not None else None
    if now is not None and ago is not None:
        return _iso(now - int(ago[1]) * _AGO_UNITS[ago[2]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        example = "2025-06-01T12:00:00Z" + (", or 6h, 7d: that long ago" if now else "")
        raise UsageError(
            f"{option} {text!r} is not an ISO 8601 date and time (e.g. {example})"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _iso(moment)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def version_tag(text: str) -> int:
    """`--if-match`: a version number, bare or quoted as the ETag shows it."""
    value = text.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a policy version (e.g. 7)")
    return int(value)


_HEADER_VERSION = re.compile(r"^# assets-gateway policy version (\d+),", re.MULTILINE)


def edited_version(text: str) -> int | None:
    """The version `policy get` wrote in the file's header: the one this file was edited from."""
    match = _HEADER_VERSION.search(text)
    return int(match.group(1)) if match else None


def explain_body(args: argparse.Namespace, manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """`POST /admin/explain`'s body from the command line (and the manifest file, if any)."""
    summary_given = args.entries is not None or args.bytes is not None
    details_given = bool(args.paths) or args.largest_file_bytes is not None
    if manifest is not None and (summary_given or details_given):
        raise UsageError("pass --manifest FILE or a summary (--entries, --bytes), not both")
    if details_given and not summary_given:
        raise UsageError("--path and --largest-file-bytes need --entries and --bytes")
    if summary_given and (args.entries is None or args.bytes is None):
        raise UsageError("a summary needs both --entries N and --bytes N")
    body: dict[str, Any] = {
        "principal": args.principal,
        "account_id": args.account,
        "script_name": args.script,
    }
    if args.namespace:
        body["namespace"] = args.namespace
    if manifest is not None:
        body["manifest"] = dict(manifest)
    elif summary_given:
        summary: dict[str, Any] = {"entries": args.entries, "bytes": args.bytes}
        if args.paths:
            summary["paths"] = list(args.paths)
        if args.largest_file_bytes is not None:
            summary["largest_file_bytes"] = args.largest_file_bytes
        body["summary"] = summary
    return body


def grant_body(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """`POST /admin/teams/{team}/grants`'s body; `--hours` counts from `now`."""
    quotas = {name: value for name in QUOTA_OPTIONS if (value := getattr(args, name)) is not None}
    if not quotas:
        raise UsageError(
            "a grant needs at least one of --sessions-per-minute, --sessions-per-day, "
            "--entries-per-day, --bytes-per-day"
        )
    if args.expires is not None:
        expires_at = parse_instant(args.expires, "--expires")
        if datetime.fromisoformat(expires_at) <= now:
            raise UsageError(f"--expires {args.expires} is in the past")
    else:
        expires_at = _iso(now + timedelta(hours=args.hours))
    return {"quotas": quotas, "reason": args.reason, "expires_at": expires_at}
