"""Column masks against writes that would read the masked value through the row itself.

A table with a masked column (salary, mask "0" unless the caller has the admin claim): a write whose WHERE,
SET values, ON CONFLICT clause or RETURNING reads the whole row of its target (its name or alias as a value,
`t.*`, `(t).col`, `(t).*`, row_to_json(t), t::text, array[t]) or the rewriter's own aliases (tg_w, tg_row)
would see the real salary: tenantgate refuses it with 0A000 and nothing is written. The real salaries (100,
200) must never reach the client nor be copied into another column.

Also: a client alias for a policy table that is the same as the alias in the policy's own subquery
(`UPDATE records m` with a policy reading `members m`) is not captured by it.
"""

from __future__ import annotations

import io
import uuid

import psycopg2
import pytest

from enforcement_support import admin_rows, pg2, start_with_policy

SALARIES = {"100", "200"}


def _mask_policy(t: str) -> str:
    key = f'"public.{t}"'
    return (f'default_action = "deny"\nsearch_path = ["public"]\n\n[tables.{key}]\n\n'
            f"[[tables.{key}.policies]]\n"
            'name = "tenant"\n'
            'using = "tenant_id = tenantgate.tenant()"\n\n'
            f"[tables.{key}.columns.salary]\n"
            'mask = "0"\n'
            "unless = \"tenantgate.claim('role') = 'admin'\"\n")


@pytest.fixture
def users(pg, start_proxy):
    t = f"users_{uuid.uuid4().hex[:10]}"
    pg.psql(f"CREATE TABLE public.{t} (id int PRIMARY KEY, tenant_id text NOT NULL, email text, role text,"
            f" salary int); INSERT INTO public.{t} VALUES (1, 'acme', 'a@x', 'dev', 100),"
            f" (2, 'acme', 'b@x', 'ops', 200); GRANT ALL ON public.{t} TO PUBLIC")
    proxy = start_with_policy(start_proxy, _mask_policy(t))
    yield pg, proxy, t
    pg.psql(f"DROP TABLE IF EXISTS public.{t}")


# The attack statements, with `users` standing for the table.
ATTACKS = [
    "UPDATE users SET role = role WHERE true RETURNING users",
    "UPDATE users SET role = role WHERE true RETURNING (users).*",
    "UPDATE users SET role = role WHERE true RETURNING row_to_json(users)",
    "UPDATE users SET role = role WHERE id = 2 AND (users).salary > 150 RETURNING id",
    "DELETE FROM users WHERE id = 2 RETURNING (users).salary",
    "INSERT INTO users (id, email, role) VALUES (1, 'x', 'y') ON CONFLICT (id) DO UPDATE SET role = users.role "
    "RETURNING (users).salary",
    "INSERT INTO users (id, email, role) VALUES (1, 'x', 'y') ON CONFLICT (id) DO UPDATE SET role = users.role "
    "RETURNING tg_w.tg_row",
    "UPDATE users SET role = role WHERE true RETURNING tg_w.tg_row",
    "UPDATE users SET role = (users).salary::text WHERE id = 2",
    "UPDATE users x SET role = role WHERE true RETURNING x",
    "UPDATE users x SET role = role WHERE true RETURNING (x).salary",
    "UPDATE users SET role = role WHERE true RETURNING to_jsonb(users)",
    "UPDATE users SET role = role WHERE true RETURNING array[users]",
    "UPDATE users SET role = role WHERE true RETURNING users::text",
    "UPDATE users SET role = role WHERE true RETURNING users.row_to_json",
    "UPDATE users SET role = role WHERE true RETURNING salary(users)",
    "UPDATE users SET role = row_to_json(users)::text WHERE id = 1",
    "DELETE FROM users x WHERE x::text LIKE '%200%'",
    "UPDATE users SET role = role WHERE EXISTS (SELECT 1 WHERE users.salary > 150)",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_whole_row_reads_of_a_masked_table_are_refused(users, attack):
    pg, proxy, t = users
    sql = attack.replace("users", t)
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.Error) as err:
                cur.execute(sql)
                leaked = cur.fetchall() if cur.description else []
                pytest.fail(f"not refused: {sql} -> {leaked}")
        assert err.value.pgcode == "0A000", (sql, err.value.pgcode, err.value.pgerror)
        assert not any(s in (err.value.pgerror or "") for s in SALARIES)
    finally:
        conn.close()
    # Nothing was written: the roles are the seeded ones, the salaries untouched.
    assert admin_rows(pg, f"SELECT id, role, salary FROM public.{t} ORDER BY id") == [(1, "dev", 100),
                                                                                    (2, "ops", 200)]


def test_copy_of_a_write_returning_the_row_is_refused(users):
    pg, proxy, t = users
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            out = io.StringIO()
            with pytest.raises(psycopg2.Error) as err:
                cur.copy_expert(f"COPY (UPDATE {t} SET role = role WHERE true RETURNING {t}) TO STDOUT", out)
            assert err.value.pgcode == "0A000", err.value.pgerror
            assert not any(s in out.getvalue() for s in SALARIES)
    finally:
        conn.close()


def test_plain_columns_of_a_masked_table_still_work(users):
    """The refusals are not a blanket ban: writes that read only unmasked columns go through."""
    pg, proxy, t = users
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {t} SET role = upper(role) WHERE id = 2 AND role = 'ops' RETURNING id, role")
            assert cur.fetchall() == [(2, "OPS")]
            cur.execute(f"UPDATE {t} x SET email = x.email || '!' WHERE x.id = 1 RETURNING x.id, x.email")
            assert cur.fetchall() == [(1, "a@x!")]
            cur.execute(f"SELECT id, salary FROM {t} ORDER BY id")
            assert cur.fetchall() == [(1, 0), (2, 0)]  # masked on reads
            # Writing the masked column (not reading it) is allowed.
            cur.execute(f"UPDATE {t} SET salary = 300 WHERE id = 1")
            assert cur.rowcount == 1
    finally:
        conn.close()
    assert admin_rows(pg, f"SELECT id, role, salary FROM public.{t} ORDER BY id") == [(1, "dev", 300),
                                                                                    (2, "OPS", 200)]


# --------------------------------------------------------------------------
# Alias capture.

def _member_policy(rec: str, mem: str) -> str:
    return (f'default_action = "deny"\nsearch_path = ["public"]\n\n'
            f'[tables."public.{mem}"]\nscope = "tenant"\n\n'
            f'[tables."public.{rec}"]\n\n'
            f'[[tables."public.{rec}".policies]]\n'
            'name = "members"\n'
            f'using = "tenant_id = tenantgate.tenant() AND EXISTS (SELECT 1 FROM {mem} m WHERE m.record_id = '
            f'{rec}.id AND m.user_id = tenantgate.user_id())"\n')


@pytest.fixture
def records(pg, start_proxy):
    rec, mem = f"records_{uuid.uuid4().hex[:8]}", f"members_{uuid.uuid4().hex[:8]}"
    pg.psql(f"CREATE TABLE public.{rec} (id int PRIMARY KEY, tenant_id text NOT NULL, body text);"
            f"CREATE TABLE public.{mem} (record_id int, user_id int, tenant_id text NOT NULL);"
            f"INSERT INTO public.{rec} VALUES (1, 'acme', 'one'), (2, 'acme', 'two'), (3, 'acme', 'three');"
            f"INSERT INTO public.{mem} VALUES (1, 42, 'acme'), (3, 42, 'acme'), (2, 7, 'acme');"
            f"GRANT ALL ON public.{rec}, public.{mem} TO PUBLIC")
    proxy = start_with_policy(start_proxy, _member_policy(rec, mem))
    yield pg, proxy, rec
    pg.psql(f"DROP TABLE IF EXISTS public.{rec}, public.{mem}")


def test_a_client_alias_equal_to_the_policys_alias_is_not_captured(records):
    pg, proxy, rec = records
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {rec} m SET body = 'upd' WHERE m.id = 1")
            assert cur.rowcount == 1
            cur.execute(f"UPDATE {rec} m SET body = 'upd' WHERE m.id = 2")  # not a member: no row
            assert cur.rowcount == 0
            cur.execute(f"SELECT m.id, m.body FROM {rec} m ORDER BY m.id")
            assert cur.fetchall() == [(1, "upd"), (3, "three")]
            cur.execute(f"INSERT INTO {rec} AS m (id, tenant_id, body) VALUES (1, 'acme', 'x') "
                        "ON CONFLICT (id) DO UPDATE SET body = 'ups' WHERE m.id = 1 RETURNING m.id, m.body")
            assert cur.fetchall() == [(1, "ups")]
            cur.execute(f"DELETE FROM {rec} m WHERE m.id IN (2, 3)")
            assert cur.rowcount == 1  # only 3: 2 is not the caller's
    finally:
        conn.close()
    assert admin_rows(pg, f"SELECT id, body FROM public.{rec} ORDER BY id") == [(1, "ups"), (2, "two")]
