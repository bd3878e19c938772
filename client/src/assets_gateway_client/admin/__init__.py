"""`assets-gateway admin`: the org admins' command line for the gateway's admin door.

Its modules, by job: `parser` (the command line), `commands` (each command, and `run_admin`),
`inputs` (policy files, manifests, request bodies, pointers to file lines), `http` (the admin
door's client), `render` (tables and texts for people), `errors` (what a command fails with).

    assets-gateway admin policy get [--version N] [--output FILE] [--format yaml|json]
    assets-gateway admin policy versions [--limit N] [--before N]
    assets-gateway admin policy validate FILE
    assets-gateway admin policy publish FILE --reason TEXT [--if-match N]
    assets-gateway admin policy rollback VERSION --reason TEXT
    assets-gateway admin policy simulate FILE [--since ISO] [--until ISO]
    assets-gateway admin explain --principal ARN --account ID --script NAME [--namespace NS]
        [--manifest FILE | --entries N --bytes N [--path P ...] [--largest-file-bytes N]]
    assets-gateway admin usage [--team T] [--window minute|day]
    assets-gateway admin grant TEAM --reason TEXT (--expires ISO | --hours H)
        [--sessions-per-minute N] [--sessions-per-day N] [--entries-per-day N] [--bytes-per-day N]
    assets-gateway admin reset-usage TEAM --window minute|day|all --reason TEXT
    assets-gateway admin suspend TEAM --reason TEXT
    assets-gateway admin resume TEAM --reason TEXT
    assets-gateway admin kill-switch engage|release --reason TEXT

Every command takes `--gateway URL` (default: $ASSETS_GATEWAY_URL, the base URL teams use,
ending with /client/v4; the admin routes live at the stage root), `--profile`, `--region` and
`--json`. Requests are signed with SigV4 from the standard AWS credential chain.

Policy files hold the policy document itself (`{"defaults": ..., "teams": ...}`) as YAML or JSON
(`.json` files are read as JSON, anything else as YAML; `-` is stdin). Duplicate keys are refused,
and the gateway's JSON pointers are shown with the line of the file they point at.

stdout carries readable tables (or, with `--json`, the answer's `result` as JSON); errors, with
their codes and pointers, go to stderr. Exit status: 0 done; 1 refused or failed (any non-2xx
answer; also `explain` when the decision is a refusal); 2 a usage or local problem (unreadable
file, no gateway URL, no AWS credentials); 130 interrupted.
"""
