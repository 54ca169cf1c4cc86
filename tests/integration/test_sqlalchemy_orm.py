"""SQLAlchemy ORM through tenantgate: models, relationships, writes and pagination stay in the caller's scope.

Project (scope tenant) 1-n Task (scope tenant_owner, owner column owner_id).
Seed: projects 1..6 and tasks 1..18 over acme/globex/initech, task i in
project (i-1) % 6 + 1, owner 42 for even ids, 7 for odd ones; plus task 50,
owned by acme/42 but pointing at a globex project. The caller is acme/42.
Every write to another tenant's row is checked directly on PostgreSQL.
"""

from __future__ import annotations

import pytest
import sqlalchemy
from sqlalchemy import Boolean, Column, FetchedValue, ForeignKey, Integer, Text, create_engine, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, declarative_base, joinedload, relationship, selectinload
from sqlalchemy.pool import NullPool

import harness
from enforcement_support import admin_rows, policy_text, sqlstate, start_with_policy

Base = declarative_base()
TENANTS = ("acme", "globex", "initech")
ME, ME_USER = "acme", 42


class Project(Base):
    __tablename__ = "orm_projects"
    id = Column(Integer, primary_key=True)
    # FetchedValue: the "server" (tenantgate) fills the column, so the ORM leaves it out of INSERTs
    # instead of sending NULL (which tenantgate, like RLS, refuses).
    tenant_id = Column(Text, server_default=FetchedValue())
    name = Column(Text, nullable=False)
    tasks = relationship("Task", back_populates="project", order_by="Task.id")


class Task(Base):
    __tablename__ = "orm_tasks"
    id = Column(Integer, primary_key=True)
    tenant_id = Column(Text, server_default=FetchedValue())
    owner_id = Column(Integer, server_default=FetchedValue())
    project_id = Column(Integer, ForeignKey("orm_projects.id"))
    title = Column(Text, nullable=False)
    done = Column(Boolean, nullable=False, default=False)
    project = relationship("Project", back_populates="tasks")


PROJECTS = [(i, TENANTS[(i - 1) % 3], f"project {i}") for i in range(1, 7)]
TASKS = [(i, TENANTS[((i - 1) % 6) % 3], 42 if i % 2 == 0 else 7, (i - 1) % 6 + 1, f"task {i}")
         for i in range(1, 19)] + [(50, "acme", 42, 2, "task 50 -> globex project")]
MY_PROJECTS = [p[0] for p in PROJECTS if p[1] == ME]
MY_TASKS = [t[0] for t in TASKS if t[1] == ME and t[2] == ME_USER]
OTHER_PROJECT = next(p[0] for p in PROJECTS if p[1] != ME)
OTHER_TASK = next(t[0] for t in TASKS if t[1] != ME)


@pytest.fixture
def orm_db(pg):
    pg.psql(
        "DROP TABLE IF EXISTS orm_tasks, orm_projects;"
        "CREATE TABLE orm_projects (id serial PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL);"
        "CREATE TABLE orm_tasks (id serial PRIMARY KEY, tenant_id text NOT NULL, owner_id int NOT NULL,"
        " project_id int REFERENCES orm_projects, title text NOT NULL, done boolean NOT NULL DEFAULT false);"
        "INSERT INTO orm_projects VALUES " + ",".join(f"({i}, '{t}', '{n}')" for i, t, n in PROJECTS) + ";"
        "INSERT INTO orm_tasks (id, tenant_id, owner_id, project_id, title) VALUES "
        + ",".join(f"({i}, '{t}', {o}, {p}, '{n}')" for i, t, o, p, n in TASKS) + ";"
        "SELECT setval('orm_projects_id_seq', 100); SELECT setval('orm_tasks_id_seq', 100);"
        "GRANT ALL ON orm_projects, orm_tasks TO PUBLIC;"
        "GRANT ALL ON SEQUENCE orm_projects_id_seq, orm_tasks_id_seq TO PUBLIC")
    yield
    pg.psql("DROP TABLE IF EXISTS orm_tasks, orm_projects")


@pytest.fixture
def proxy(start_proxy, orm_db):
    return start_with_policy(start_proxy, policy_text({"orm_projects": "tenant", "orm_tasks": "tenant_owner"}))


def engine_for(proxy, driver: str = "psycopg2", tenant: str = ME, user: int = ME_USER):
    password = harness.PRINCIPALS["app"]["password"]
    url = f"postgresql+{driver}://app:{password}@{proxy.host}:{proxy.port}/{harness.DATABASE}"
    return create_engine(url, poolclass=NullPool, future=True,
                         connect_args={"options": f"-c tenantgate.tenant={tenant} -c tenantgate.user={user}"})


def db_state(pg) -> tuple[list, list]:
    return (admin_rows(pg, "SELECT * FROM orm_projects ORDER BY id"),
            admin_rows(pg, "SELECT * FROM orm_tasks ORDER BY id"))


def others(rows: list[tuple]) -> list[tuple]:
    """Rows that are not the caller's (tenant column is the second)."""
    return [r for r in rows if r[1] != ME]


def assert_refused(excinfo) -> None:
    assert isinstance(excinfo.value, DBAPIError)
    assert sqlstate(excinfo.value) == "42501", excinfo.value


# --------------------------------------------------------------------------


def test_create_tenant_filled_explicit_and_refused(proxy, pg):
    engine = engine_for(proxy)
    with Session(engine) as s:
        filled = Project(name="omitted tenant")
        explicit = Project(name="explicit tenant", tenant_id=ME)
        s.add_all([filled, explicit])
        s.commit()
        assert filled.tenant_id == ME and explicit.tenant_id == ME  # reloaded after commit
        t = Task(title="my task", project=filled)
        s.add(t)
        s.commit()
        assert (t.tenant_id, t.owner_id) == (ME, ME_USER)

        s.add(Project(name="smuggled", tenant_id="globex"))
        with pytest.raises(DBAPIError) as e:
            s.commit()
        assert_refused(e)
        s.rollback()
        s.add(Task(title="smuggled owner", owner_id=7, project_id=filled.id))
        with pytest.raises(DBAPIError) as e:
            s.flush()
        assert_refused(e)
    assert admin_rows(pg, "SELECT name, tenant_id FROM orm_projects WHERE id > 100 ORDER BY id") == [
        ("omitted tenant", ME), ("explicit tenant", ME)]
    assert admin_rows(pg, "SELECT title, tenant_id, owner_id FROM orm_tasks WHERE id > 100") == [
        ("my task", ME, ME_USER)]
    engine.dispose()


def test_query_update_delete(proxy, pg):
    before = db_state(pg)
    engine = engine_for(proxy)
    with Session(engine) as s:
        assert [p.id for p in s.scalars(select(Project).order_by(Project.id))] == MY_PROJECTS
        assert [t.id for t in s.scalars(select(Task).order_by(Task.id))] == MY_TASKS
        assert s.get(Project, OTHER_PROJECT) is None
        assert s.get(Task, OTHER_TASK) is None
        assert s.scalars(select(Task).where(Task.tenant_id != ME)).all() == []

        mine = s.get(Project, MY_PROJECTS[0])
        mine.name = "renamed"
        s.commit()
        r = s.execute(sqlalchemy.update(Project).where(Project.id == OTHER_PROJECT).values(name="pwned"))
        assert r.rowcount == 0
        r = s.execute(sqlalchemy.update(Task).values(done=True))
        assert r.rowcount == len(MY_TASKS)
        r = s.execute(sqlalchemy.delete(Task).where(Task.id == OTHER_TASK))
        assert r.rowcount == 0
        assert s.query(Task).filter(Task.owner_id == 7).delete() == 0
        s.delete(s.get(Task, MY_TASKS[0]))
        s.commit()
    projects, tasks = db_state(pg)
    assert dict((r[0], r[2]) for r in projects)[MY_PROJECTS[0]] == "renamed"
    assert others(projects) == others(before[0]) and others(tasks) == others(before[1])
    assert [r for r in tasks if r[1] == ME and r[2] == 7] == [r for r in before[1] if r[1] == ME and r[2] == 7]
    assert sorted(r[0] for r in tasks if r[1] == ME and r[2] == ME_USER) == MY_TASKS[1:]
    assert all(r[5] for r in tasks if r[1] == ME and r[2] == ME_USER)
    engine.dispose()


@pytest.mark.parametrize("loader", ["lazy", "selectinload", "joinedload"])
def test_relationships(proxy, loader):
    engine = engine_for(proxy)
    options = {"lazy": [], "selectinload": [selectinload(Project.tasks)],
               "joinedload": [joinedload(Project.tasks)]}[loader]
    with Session(engine) as s:
        projects = s.scalars(select(Project).options(*options).order_by(Project.id)).unique().all()
        assert [p.id for p in projects] == MY_PROJECTS
        for p in projects:
            expected = [t[0] for t in TASKS if t[3] == p.id and t[1] == ME and t[2] == ME_USER]
            assert [t.id for t in p.tasks] == expected
            assert all(t.tenant_id == ME and t.owner_id == ME_USER for t in p.tasks)
        # Many-to-one towards another tenant's project: the parent is invisible.
        stray = s.get(Task, 50)
        assert stray is not None and stray.project_id == OTHER_PROJECT
        assert stray.project is None
        tasks = s.scalars(select(Task).options(joinedload(Task.project)).order_by(Task.id)).all()
        assert [t.id for t in tasks] == MY_TASKS
        assert {t.project.tenant_id for t in tasks if t.project is not None} == {ME}
        # An explicit join cannot reach the other tenant's project either.
        joined = s.execute(select(Task.id, Project.name).join(Project, Task.project_id == Project.id)
                           .order_by(Task.id)).all()
        assert [r[0] for r in joined] == [t for t in MY_TASKS if t != 50]
    engine.dispose()


def test_pagination(proxy):
    engine = engine_for(proxy)
    with Session(engine) as s:
        q = select(Task).order_by(Task.id)
        assert [t.id for t in s.scalars(q.limit(2).offset(1))] == MY_TASKS[1:3]
        assert s.scalar(select(func.count()).select_from(Task)) == len(MY_TASKS)
        assert s.query(Task).count() == len(MY_TASKS)
        assert s.query(Project).order_by(Project.id).offset(1).limit(10).all()[0].id == MY_PROJECTS[1]
        pages, offset = [], 0
        while True:
            page = [t.id for t in s.scalars(q.limit(2).offset(offset))]
            if not page:
                break
            pages += page
            offset += 2
        assert pages == MY_TASKS
    engine.dispose()


def test_bulk_insert_executemany(proxy, pg):
    engine = engine_for(proxy)
    rows = [{"title": f"bulk {i}", "project_id": MY_PROJECTS[0]} for i in range(25)]
    with Session(engine) as s:
        s.execute(insert(Task), rows)
        s.commit()
        s.bulk_insert_mappings(Task, [{"title": "mapping", "tenant_id": ME, "owner_id": ME_USER}])
        s.commit()
        # Every parameter set has the same keys (SQLAlchemy compiles the statement from the first one).
        bad = [{"title": f"second {i}", "project_id": MY_PROJECTS[0], "tenant_id": ME, "owner_id": ME_USER}
               for i in range(3)]
        bad.insert(2, dict(bad[0], title="bulk smuggled", tenant_id="globex"))
        with pytest.raises(DBAPIError) as e:
            s.execute(insert(Task), bad)
        assert_refused(e)
        s.rollback()
    with engine.begin() as conn:
        conn.execute(insert(Task.__table__), [{"title": "core many", "tenant_id": ME}] * 3)
    assert admin_rows(pg, "SELECT count(*), min(tenant_id), max(tenant_id), min(owner_id), max(owner_id) "
                          "FROM orm_tasks WHERE id > 100") == [(29, ME, ME, ME_USER, ME_USER)]
    assert admin_rows(pg, "SELECT count(*) FROM orm_tasks WHERE title LIKE '%%smuggled%%' OR title LIKE 'second%%'"
                      ) == [(0,)]
    engine.dispose()


def test_other_tenant_sees_only_its_rows(proxy, pg):
    engine = engine_for(proxy, tenant="globex", user=7)
    with Session(engine) as s:
        expected = [t[0] for t in TASKS if t[1] == "globex" and t[2] == 7]
        assert [t.id for t in s.scalars(select(Task).order_by(Task.id))] == expected
        assert s.get(Project, MY_PROJECTS[0]) is None
        assert s.execute(sqlalchemy.delete(Project).where(Project.id == MY_PROJECTS[0])).rowcount == 0
        s.commit()
    assert admin_rows(pg, "SELECT count(*) FROM orm_projects") == [(len(PROJECTS),)]
    engine.dispose()


# --------------------------------------------------------------------------
# psycopg 3. SQLAlchemy 2.0 ships the postgresql+psycopg dialect; the Debian
# SQLAlchemy (1.4) does not, so a minimal one is registered when it is missing.


def _ensure_psycopg_dialect() -> None:
    try:
        sqlalchemy.dialects.registry.load("postgresql.psycopg")
        return
    except sqlalchemy.exc.NoSuchModuleError:
        pass
    sqlalchemy.dialects.registry.register("postgresql.psycopg", __name__, "MinimalPsycopgDialect")


from sqlalchemy.dialects.postgresql.base import PGDialect  # noqa: E402


class MinimalPsycopgDialect(PGDialect):
    """psycopg 3 as a DB-API module for SQLAlchemy 1.4 (server-side binding, extended protocol)."""

    driver = "psycopg"
    supports_statement_cache = True
    default_paramstyle = "pyformat"
    supports_sane_multi_rowcount = False

    @classmethod
    def dbapi(cls):
        import psycopg
        return psycopg

    def create_connect_args(self, url):
        opts = url.translate_connect_args(username="user", database="dbname")
        opts.update(url.query)
        return [], opts

    def set_isolation_level(self, connection, level):
        import psycopg
        connection.isolation_level = None if level == "AUTOCOMMIT" else getattr(
            psycopg.IsolationLevel, level.replace(" ", "_"))
        connection.autocommit = level == "AUTOCOMMIT"

    def get_isolation_level(self, connection):
        return "READ COMMITTED"

    def is_disconnect(self, e, connection, cursor):
        return bool(connection is not None and getattr(connection, "closed", False))


def test_psycopg3_dialect(proxy, pg):
    _ensure_psycopg_dialect()
    engine = engine_for(proxy, driver="psycopg")
    with Session(engine) as s:
        assert [p.id for p in s.scalars(select(Project).options(selectinload(Project.tasks)).order_by(Project.id))] \
            == MY_PROJECTS
        assert s.get(Task, OTHER_TASK) is None
        p = Project(name="via psycopg 3")
        s.add(p)
        s.flush()
        s.add(Task(title="psycopg 3 task", project_id=p.id))
        s.commit()
        assert p.tenant_id == ME
        assert s.execute(sqlalchemy.update(Task).where(Task.id == OTHER_TASK).values(title="pwned")).rowcount == 0
        assert [t.id for t in s.scalars(select(Task).order_by(Task.id).limit(2).offset(1))] == MY_TASKS[1:3]
        s.add(Project(name="smuggled 3", tenant_id="initech"))
        with pytest.raises(DBAPIError) as e:
            s.commit()
        assert_refused(e)
        s.rollback()
        # Bind-time check: the tenant arrives as a parameter of an extended-protocol statement.
        with pytest.raises(DBAPIError) as e:
            s.execute(insert(Project), [{"name": "param smuggled", "tenant_id": "globex"}])
        assert_refused(e)
        s.rollback()
    assert admin_rows(pg, "SELECT name, tenant_id FROM orm_projects WHERE id > 100") == [("via psycopg 3", ME)]
    assert admin_rows(pg, "SELECT title FROM orm_tasks WHERE id = %s", (OTHER_TASK,)) == [(f"task {OTHER_TASK}",)]
    engine.dispose()
