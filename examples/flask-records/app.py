"""The scenario of docs/design.md ("The scenario") as a runnable Flask application.

Its three routes of the scenario keep the object-level authorization bug
exactly as written there: the SQL never binds the caller's identity. Three
more routes (/api/me, /api/my/records, /api/countries) are written correctly,
so that tenantgate's shadow-mode report has something to leave out. Run it against the database
directly and it leaks other tenants' rows; run it through tenantgate and the
same code returns only what the caller may see.

The caller's tenant and user come from the request (the X-Tenant and X-User
headers stand in for a session or a JWT). Two ways to hand them to tenantgate:

- Start-up identity (TENANTGATE_IDENTITY=1): each database connection carries
  the caller in its start-up options; connections are not pooled across
  callers (NullPool), because a connection's identity is fixed for its life.
- Signed tokens (TENANTGATE_TOKENS=1): one ordinary pooled engine (5
  connections). The request's signed token (Authorization: Bearer <jwt>, as
  an identity provider issued it) is set with SET LOCAL tenantgate.token at
  the start of each of the request's transactions, so it ends with the
  transaction and a connection goes back to the pool with no caller.
  tenantgate verifies the token; the app only passes it on.

    DATABASE_URL=postgresql+psycopg2://app:secret@127.0.0.1:6432/appdb \
    TENANTGATE_TOKENS=1 flask --app app run
"""

import os

from flask import Flask, abort, g, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event, text
from sqlalchemy.pool import NullPool

db = SQLAlchemy()


def create_app(database_url=None, send_identity=None, send_token=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ["DATABASE_URL"]
    if send_identity is None:
        send_identity = os.environ.get("TENANTGATE_IDENTITY") == "1"
    if send_token is None:
        send_token = os.environ.get("TENANTGATE_TOKENS") == "1"
    if send_token:
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 5, "max_overflow": 0}
    else:
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": NullPool}
    db.init_app(app)

    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "do_connect")
        def pass_identity(dialect, conn_rec, cargs, cparams):
            # tenantgate reads the caller from these start-up parameters.
            if send_identity:
                cparams["options"] = (
                    f"-c tenantgate.tenant={g.tenant} -c tenantgate.user={g.user}"
                )

        @event.listens_for(engine, "begin")
        def pass_token(conn):
            # Every transaction of the request starts by naming its caller; SET
            # LOCAL ends with the transaction, so a pooled connection never
            # carries one request's caller into the next.
            if send_token:
                conn.exec_driver_sql("SET LOCAL tenantgate.token = %s", (g.token,))

    @app.before_request
    def identify_caller():
        g.tenant = request.headers.get("X-Tenant", "")
        g.user = request.headers.get("X-User", "")
        if not g.tenant or not g.user:
            abort(401)
        if send_token:
            auth = request.headers.get("Authorization", "")
            g.token = auth.removeprefix("Bearer ").strip()
            if not auth.startswith("Bearer ") or not g.token:
                abort(401)

    # Route 1: a profile by id. Nothing ties the row to the caller.
    @app.get("/api/users/<int:user_id>")
    def get_user(user_id):
        row = db.session.execute(
            text("SELECT id, email, role FROM users WHERE id = :uid"), {"uid": user_id}
        ).first()
        if row is None:
            abort(404)
        return jsonify(id=row.id, email=row.email, role=row.role)

    # Route 2: a record by id, checked too late: the other tenant's row has
    # already crossed the wire when Python compares the tenant.
    @app.get("/api/records/<int:record_id>")
    def get_record(record_id):
        row = db.session.execute(
            text("SELECT id, tenant_id, data FROM records WHERE id = :rid"),
            {"rid": record_id},
        ).first()
        if row is None:
            abort(404)
        if str(row.tenant_id) != g.tenant:
            abort(403)
        return jsonify(id=row.id, tenant_id=row.tenant_id, data=row.data)

    # Route 3: a list, with the scoping predicate forgotten.
    @app.get("/api/records")
    def list_records():
        limit = min(int(request.args.get("limit", 100)), 1000)
        offset = int(request.args.get("offset", 0))
        rows = db.session.execute(
            text(
                "SELECT id, tenant_id, created_by, data FROM records "
                "ORDER BY id LIMIT :limit OFFSET :offset"
            ),
            {"limit": limit, "offset": offset},
        ).all()
        return jsonify(
            [
                dict(id=r.id, tenant_id=r.tenant_id, created_by=r.created_by, data=r.data)
                for r in rows
            ]
        )

    # Correct routes: the caller's identity is in the SQL.
    @app.get("/api/me")
    def get_me():
        row = db.session.execute(
            text("SELECT id, email, role FROM users WHERE tenant_id = :tid AND id = :uid"),
            {"tid": g.tenant, "uid": int(g.user)},
        ).first()
        if row is None:
            abort(404)
        return jsonify(id=row.id, email=row.email, role=row.role)

    @app.get("/api/my/records")
    def list_my_records():
        rows = db.session.execute(
            text(
                "SELECT id, data FROM records WHERE tenant_id = :tid AND created_by = :uid "
                "ORDER BY id"
            ),
            {"tid": g.tenant, "uid": int(g.user)},
        ).all()
        return jsonify([dict(id=r.id, data=r.data) for r in rows])

    @app.get("/api/countries")
    def list_countries():
        rows = db.session.execute(text("SELECT code, name FROM countries ORDER BY code")).all()
        return jsonify([dict(code=r.code, name=r.name) for r in rows])

    return app


if __name__ == "__main__":
    create_app().run()
