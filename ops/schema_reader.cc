// read_schema(): the libpq shell of schema.h.
#include <libpq-fe.h>

#include <memory>

#include "ops/schema.h"

namespace tenantgate::ops {

namespace {

// Columns of tables, views and foreign tables outside the system schemas; a
// domain's type is its base type.
constexpr const char* kQuery =
    "SELECT n.nspname, c.relname, c.relkind, a.attname, "
    "CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', 'pg_extension') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
    "ORDER BY n.nspname, c.relname, a.attnum";

}  // namespace

std::optional<std::vector<SchemaTable>> read_schema(const std::string& conninfo,
                                                    std::string* error) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    *error = std::string("cannot connect: ") + PQerrorMessage(conn.get());
    return std::nullopt;
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), kQuery), &PQclear);
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    *error = std::string("cannot read the schema: ") + PQresultErrorMessage(res.get());
    return std::nullopt;
  }
  std::vector<SchemaTable> tables;
  for (int i = 0; i < PQntuples(res.get()); ++i) {
    auto field = [&](int c) { return std::string(PQgetvalue(res.get(), i, c)); };
    policy::QualifiedName name{field(0), field(1)};
    if (tables.empty() || tables.back().name != name) {
      tables.push_back(SchemaTable{name, field(2).empty() ? 'r' : field(2)[0], {}});
    }
    tables.back().columns.push_back({field(3), field(4)});
  }
  return tables;
}

}  // namespace tenantgate::ops
