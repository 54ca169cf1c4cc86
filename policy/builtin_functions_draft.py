#!/usr/bin/env python3
"""Drafts policy/builtin_functions.tsv from a PostgreSQL server's pg_proc.

Usage: builtin_functions_draft.py PROCS.TSV [EXISTING.TSV] > builtin_functions.tsv

PROCS.TSV is the output of the query in QUERY below (psql -A -t -F tab).
Entries already in EXISTING.TSV keep their reviewed action and reason; new
names get a drafted one from the rules below, to be reviewed by hand before
the file is committed. The rules deny by name (the reasons the README lists)
and allow the rest; they are a starting point, the committed file is the list.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

QUERY = r"""
select n.nspname, p.proname, p.prokind, p.provolatile, p.proretset, format_type(p.prorettype, null),
 coalesce((select string_agg(format_type(t, null), ',' order by o)
           from unnest(p.proargtypes::oid[]) with ordinality u(t, o)), ''),
 exists(select 1 from pg_operator where oprcode = p.oid),
 exists(select 1 from pg_type where p.oid in (typinput, typoutput, typreceive, typsend, typmodin,
                                              typmodout, typanalyze, typsubscript)),
 exists(select 1 from pg_cast where castfunc = p.oid),
 exists(select 1 from pg_operator where p.oid in (oprrest, oprjoin)),
 exists(select 1 from pg_amproc where amproc = p.oid),
 coalesce(obj_description(p.oid, 'pg_proc'), '')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where nspname in ('pg_catalog', 'information_schema') order by 1, 2
"""

# (regex on the name, category). First match wins. Every one is a deny.
DENY = [
    (r"^(ts_stat|ts_rewrite)$", "runs SQL text"),
    (r"^(query|cursor|table|schema|database)_to_xml", "runs SQL text or reads tables unscoped"),
    (r"^dblink", "runs SQL text on another connection"),
    (r"^(pg_read_file|pg_read_file_old|pg_read_binary_file|pg_ls_.*|pg_stat_file|pg_file_.*|"
     r"pg_current_logfile|pg_logdir_ls|pg_show_all_file_settings|pg_hba_file_rules|"
     r"pg_ident_file_mappings|pg_tablespace_databases|pg_tablespace_location|pg_relation_filepath)$",
     "server files"),
    (r"^(lo_.*|loread|lowrite)$", "large objects (storage shared by all tenants)"),
    (r"^pg_stat_", "statistics of every tenant's rows and other sessions"),
    (r"^(pg_terminate_backend|pg_cancel_backend|pg_blocking_pids|pg_safe_snapshot_blocking_pids|"
     r"pg_isolation_test_session_is_blocked|pg_lock_status|pg_cursor|pg_prepared_statement|"
     r"pg_prepared_xact|pg_get_backend_memory_contexts|pg_log_backend_memory_contexts|"
     r"pg_get_shmem_allocations|pg_get_multixact_members|pg_last_committed_xact|"
     r"pg_xact_commit_timestamp|pg_xact_commit_timestamp_origin)$",
     "other sessions' state (a pooled backend is shared)"),
    (r"^(pg_relation_size|pg_table_size|pg_total_relation_size|pg_indexes_size|pg_database_size|"
     r"pg_tablespace_size|pg_sequence_last_value|pg_mcv_list_items)$",
     "reveals other tenants' row counts, sizes or values"),
    (r"^(currtid.*)$", "reads table rows by tid unscoped"),
    (r"^(brin_summarize_.*|brin_desummarize_range|gin_clean_pending_list)$", "modifies indexes"),
    (r"^binary_upgrade_", "server administration (binary upgrade)"),
    (r"^(pg_reload_conf|pg_rotate_logfile.*|pg_switch_wal|pg_promote|pg_create_.*|"
     r"pg_drop_replication_slot|pg_copy_.*replication_slot|pg_replication_origin_.*|"
     r"pg_replication_slot_advance|pg_logical_.*|pg_backup_.*|pg_start_backup|pg_stop_backup|"
     r"pg_wal_replay_.*|pg_import_system_collations|pg_nextoid|pg_stop_making_pinned_objects|"
     r"pg_extension_config_dump|pg_get_replication_slots|pg_show_replication_origin_status|"
     r"pg_control_.*|pg_config|pg_current_wal_.*|pg_last_wal_.*|pg_walfile_name.*|"
     r"pg_get_wal_replay_pause_state|pg_is_wal_replay_paused|pg_export_snapshot)$",
     "server administration"),
    (r"^(set_config|setseed|pg_advisory_.*|pg_try_advisory_.*|pg_notify)$",
     "changes session state shared by a pooled backend"),
    (r"^setval$", "changes a sequence shared by all tenants"),
    (r"^pg_sleep", "holds a backend (denial of service)"),
    (r"^(plpgsql_.*|fmgr_.*_validator)$", "procedural language handler or validator"),
]

NUMERIC = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "money", "oid"}
DATETIME = {"date", "time without time zone", "time with time zone", "timestamp without time zone",
            "timestamp with time zone", "interval", "abstime", "reltime"}
GEOMETRIC = {"point", "line", "lseg", "box", "path", "polygon", "circle"}
NETWORK = {"inet", "cidr", "macaddr", "macaddr8"}
TEXT = {"text", "character varying", "character", "name", "bytea", '"char"', "bit", "bit varying"}


def category(rows) -> str:
    kinds = {r["prokind"] for r in rows}
    if kinds == {"a"}:
        return "aggregate"
    if kinds == {"w"}:
        return "window function"
    if all(r["typio"] for r in rows):
        return "type input/output"
    if all(r["oper"] for r in rows):
        return "operator implementation"
    if all(r["cast"] for r in rows):
        return "cast"
    if all(r["selectivity"] for r in rows):
        return "planner selectivity (internal arguments)"
    if all(r["amproc"] for r in rows):
        return "index support"
    if all(r["rettype"] in ("trigger", "event_trigger") for r in rows):
        return "trigger (not callable directly)"
    if all(r["rettype"].endswith("_handler") for r in rows):
        return "access method or language handler"
    types = set()
    for r in rows:
        types.add(r["rettype"])
        types.update(t for t in r["args"].split(",") if t)
    name = rows[0]["name"]
    if name.startswith(("pg_", "has_", "current_", "session_", "obj_description", "col_description",
                        "shobj_description", "format_type", "to_reg")) or types & {
                            "regclass", "regproc", "regprocedure", "regtype", "regnamespace",
                            "regrole", "regoper", "regoperator", "regconfig", "regdictionary",
                            "regcollation"}:
        return "catalog and session information"
    if types & {"tsvector", "tsquery", "gtsvector"}:
        return "text search"
    if types & {"json", "jsonb", "jsonpath"}:
        return "json"
    if types & {"xml"}:
        return "xml"
    if any("range" in t for t in types):
        return "range"
    if types & GEOMETRIC:
        return "geometric"
    if types & NETWORK:
        return "network address"
    if types & DATETIME:
        return "date and time"
    if any(t.endswith("[]") or t in ("anyarray", "anycompatiblearray") for t in types):
        return "array"
    if "internal" in types:
        return "internal support (internal arguments)"
    if types & TEXT:
        return "string"
    if types & NUMERIC:
        return "math"
    return "other"


def main() -> None:
    existing = {}
    if len(sys.argv) > 2:
        for line in open(sys.argv[2], encoding="utf-8"):
            if line.startswith("#") or not line.strip():
                continue
            schema, name, action, reason = line.rstrip("\n").split("\t")
            existing[(schema, name)] = (action, reason)
    by_name = defaultdict(list)
    for line in open(sys.argv[1], encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        by_name[(f[0], f[1])].append({
            "schema": f[0], "name": f[1], "prokind": f[2], "rettype": f[5], "args": f[6],
            "oper": f[7] == "t", "typio": f[8] == "t", "cast": f[9] == "t",
            "selectivity": f[10] == "t", "amproc": f[11] == "t"})
    print("# PostgreSQL 15 built-in functions (pg_catalog and information_schema) and what")
    print("# tenantgate does with a call to each: allow or deny, and the category or reason.")
    print("# Drafted by policy/builtin_functions_draft.py from pg_proc, reviewed by hand.")
    print("# Columns (tab-separated): schema, name, allow|deny, category or reason.")
    for (schema, name), rows in sorted(by_name.items()):
        if (schema, name) in existing:
            action, reason = existing[(schema, name)]
        else:
            action, reason = "allow", category(rows)
            for pattern, why in DENY:
                if re.search(pattern, name):
                    action, reason = "deny", why
                    break
        print(f"{schema}\t{name}\t{action}\t{reason}")


if __name__ == "__main__":
    main()
