"""docs/roles.md, rendered from the route table: who may call what, said in one place.

The authentication middleware admits a key to a route by the roles the route declares in
``gateway.routes.ROUTES``; this module renders the same table for people, so the document
can never promise what the service refuses. A test compares the committed file with
``render()`` and names the command that regenerates it::

    python -m gateway.route_docs > docs/roles.md

The table says which routes a role may call. Which rows a key then sees is decided by the
handlers (a ``crm`` key sees only what it pushed): the role descriptions below say so.
"""

from __future__ import annotations

import sys

import gateway.app  # noqa: F401 - importing it imports every api module, filling ROUTES
from gateway.routes import ROUTES, Route
from security.roles import Role

REGENERATE = "python -m gateway.route_docs > docs/roles.md"

# Who each role is for, and the rule on rows the route table cannot show.
ROLE_PURPOSE: dict[Role, str] = {
    Role.ADMIN: "the operator of the gateway. Every row of its tenant, whoever pushed it.",
    Role.TREASURY: "the treasury team: bank statements in, the review queue decided.",
    Role.CRM: "a CRM or ERP program. It sees and changes only the invoices and customers "
              "it pushed and the subscriptions it made; another key's answer 404, as if "
              "they did not exist (see [api.md](api.md#invoices-and-customers)).",
    Role.COMPLIANCE: "compliance staff: what the bank reported and every decision taken on "
                     "it, with who and why, and the audit trail. Reads only.",
    Role.AUDITOR: "an auditor: reads everything of its tenant (the audit trail, every "
                  "subscription and its deliveries too), never writes.",
}
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}


def _ordered(routes: list[Route]) -> list[Route]:
    return sorted(routes, key=lambda r: (r.path, _METHOD_ORDER.get(r.method, 9), r.method))


def _roles_cell(route: Route) -> str:
    if route.roles is None:
        return "anyone (no key)"
    return ", ".join(role.value for role in Role if role in route.roles)


def _cell(text: str) -> str:
    """Text as one Markdown table cell: a ``|`` would end it."""
    return text.replace("|", "\\|").replace("\n", " ")


def _calls(routes: list[Route]) -> str:
    return ", ".join(f"`{r.method} {r.path}`" for r in routes) or "nothing"


def render() -> str:
    """The whole of docs/roles.md."""
    routes = _ordered(ROUTES)
    lines = [
        "# Roles: who may call what",
        "",
        f"Generated from the route table (`gateway/routes.py`) by `{REGENERATE}`; do not "
        "edit it by hand: a test fails when it differs from the routes the service serves.",
        "",
        "Every API key has one role, given when it is made (`recon-gateway keys create "
        "--role ROLE --name NAME`). A route admits the roles it lists below; any other "
        "key gets `403` naming the roles allowed. The OpenAPI document (`GET /openapi.json`) "
        "lists the same roles on each operation as `x-roles`.",
        "",
        "## By role",
        "",
    ]
    for role in Role:
        mine = [r for r in routes if r.roles is not None and role in r.roles]
        reads = [r for r in mine if r.method == "GET"]
        changes = [r for r in mine if r.method != "GET"]
        lines += [
            f"**`{role.value}`**: {ROLE_PURPOSE[role]}",
            "",
            f"- reads: {_calls(reads)}",
            f"- changes: {_calls(changes)}",
            "",
        ]
    public = [r for r in routes if r.roles is None]
    lines += [
        f"Without a key: {_calls(public)}.",
        "",
        "## Every route",
        "",
        "| method | path | roles | what it does |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r.method} | `{r.path}` | {_roles_cell(r)} | {_cell(r.summary)} |"
              for r in routes]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
