"""Real Trac (1.6, Python 3) for the service's tests: seed an environment through Trac's
own model classes, and read tickets back exactly as Trac reports them.

    python trac_helper.py seed ENV < spec.json   -> {"tickets": [ids...]}
    python trac_helper.py change ENV ID < change.json  -> Ticket.save_changes, as Trac's UI does
    python trac_helper.py read ENV ID            -> ticket values, custom fields, changelog
"""
import json
import sys

from trac.env import Environment
from trac.perm import PermissionSystem
from trac.ticket.model import Milestone, Ticket
from trac.util.datefmt import to_utimestamp


def seed(env, spec):
    for name in spec.get("milestones", []):
        m = Milestone(env)
        m.name = name
        m.insert()
    ids = []
    for t in spec.get("tickets", []):
        ticket = Ticket(env)
        ticket["summary"] = t["summary"]
        ticket["reporter"] = t.get("reporter", "teacher")
        ticket["owner"] = t.get("owner", "")
        ticket["status"] = t.get("status", "new")
        ticket["type"] = t.get("type", "task")
        if "milestone" in t:
            ticket["milestone"] = t["milestone"]
        for k, v in t.get("custom", {}).items():
            ticket[k] = v
        ids.append(ticket.insert())
    perms = PermissionSystem(env)
    for user, action in spec.get("permissions", []):
        perms.grant_permission(user, action)
    with env.db_transaction as db:
        for cookie, user in spec.get("cookies", []):
            db("INSERT INTO auth_cookie (cookie, name, ipnr, time) VALUES (%s, %s, %s, %s)",
               (cookie, user, "127.0.0.1", 0))
    return {"tickets": ids}


def read(env, tid):
    t = Ticket(env, int(tid))
    values = {}
    for k, v in t.values.items():
        values[k] = to_utimestamp(v) if k in ("time", "changetime") else v
    changelog = [
        {"time": to_utimestamp(when), "author": author, "field": field,
         "old": old, "new": new, "permanent": bool(permanent)}
        for when, author, field, old, new, permanent in t.get_changelog()
    ]
    custom = [f["name"] for f in t.fields if f.get("custom")]
    return {"id": t.id, "values": values, "custom_fields": custom, "changelog": changelog}


def change(env, tid, spec):
    """The same change made by Trac itself, to compare against the service's."""
    t = Ticket(env, int(tid))
    for k, v in spec.get("fields", {}).items():
        t[k] = v
    t.save_changes(spec["author"], spec.get("comment", ""))
    return {"id": t.id}


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    env = Environment(path)
    if cmd == "seed":
        out = seed(env, json.load(sys.stdin))
    elif cmd == "change":
        out = change(env, sys.argv[3], json.load(sys.stdin))
    elif cmd == "read":
        out = read(env, sys.argv[3])
    else:
        raise SystemExit("unknown command %s" % cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
