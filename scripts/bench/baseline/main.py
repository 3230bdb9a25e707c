"""Baseline for scripts/bench/service: the original plan's Python 3.11 FastAPI service
(LearnTrac-api/src/main.py + db/trac_bridge.py), reduced to the two hot endpoints and
run the way the plan runs it (uvicorn[standard], asyncpg pool 10-20, Redis). Its code
follows the plan: the same queries, the same transform, the same cache write on read.
The plan's AuthMiddleware is undefined; a bearer JWT check stands in so both services do
the same work per request. Practice mirrors our service's semantics (record, mean of the
last five, move to `mastered` through the plan's update_ticket_learning_status)."""
import json
import os
import time

import asyncpg
import jwt
from fastapi import FastAPI, HTTPException, Request
from redis import asyncio as aioredis

app = FastAPI(title="LearnTrac API (plan baseline)")
SECRET = os.environ["LEARNTRAC_TOKEN_SECRET"]


@app.on_event("startup")
async def startup():
    app.state.db_pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=10, max_size=20, command_timeout=60)
    app.state.redis = aioredis.from_url(os.environ["REDIS_URL"], encoding="utf-8", decode_responses=True)


def current_user(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        raise HTTPException(status_code=401)
    try:
        return jwt.decode(auth[7:], SECRET, algorithms=["HS256"])["sub"]
    except jwt.PyJWTError:
        raise HTTPException(status_code=401)


async def get_ticket_as_concept(ticket_id: int):
    async with app.state.db_pool.acquire() as conn:
        ticket = await conn.fetchrow("""
            SELECT id, type, time, changetime, component, severity,
                   priority, owner, reporter, cc, version, milestone,
                   status, resolution, summary, description, keywords
            FROM ticket WHERE id = $1""", ticket_id)
        if not ticket:
            return None
        custom_fields = await conn.fetch("SELECT name, value FROM ticket_custom WHERE ticket = $1", ticket_id)
        concept = dict(ticket)
        concept['custom_fields'] = {f['name']: f['value'] for f in custom_fields}
        concept['learning_difficulty'] = float(concept['custom_fields'].get('learning_difficulty', '2.0'))
        concept['mastery_threshold'] = float(concept['custom_fields'].get('mastery_threshold', '0.8'))
        concept['prerequisites'] = json.loads(concept['custom_fields'].get('prerequisite_concepts', '[]'))
        await app.state.redis.setex(f"ticket:{ticket_id}", 3600, json.dumps(concept, default=str))
        return concept


@app.get("/api/LearnTrac/concepts/{concept_id}")
async def get_concept(concept_id: int, request: Request):
    user = current_user(request)
    concept = await get_ticket_as_concept(concept_id)
    if concept is None:
        raise HTTPException(status_code=404)
    if concept["owner"] != user:
        raise HTTPException(status_code=403)
    return concept


@app.post("/api/LearnTrac/concepts/{concept_id}/practice")
async def practice(concept_id: int, request: Request):
    user = current_user(request)
    body = await request.json()
    score = float(body["score"])
    if not 0 <= score <= 1:
        raise HTTPException(status_code=422)
    concept = await get_ticket_as_concept(concept_id)
    if concept is None:
        raise HTTPException(status_code=404)
    now = int(time.time() * 1_000_000)
    async with app.state.db_pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO learntrac_practice_attempt (concept_id, student, score, created_at) VALUES ($1, $2, $3, $4)",
                concept_id, user, score, now)
            rows = await conn.fetch(
                "SELECT score FROM learntrac_practice_attempt WHERE student = $1 AND concept_id = $2 "
                "ORDER BY created_at DESC, id DESC LIMIT 5", user, concept_id)
            mastery = sum(r["score"] for r in rows) / len(rows)
            if mastery >= concept["mastery_threshold"] and concept["status"] not in ("closed", "mastered"):
                await conn.execute("UPDATE ticket SET status = $1, changetime = $2 WHERE id = $3", "mastered", now, concept_id)
                await conn.execute(
                    "INSERT INTO ticket_change (ticket, time, author, field, oldvalue, newvalue) "
                    "VALUES ($1, $2, $3, 'status', (SELECT status FROM ticket WHERE id = $1), $4)",
                    concept_id, now, user, "mastered")
    return {"concept_id": concept_id, "student": user, "score": score, "mastery": mastery}
