#include "proxy/check_functions.h"

#include <libpq-fe.h>

#include <memory>
#include <set>

namespace tenantgate::proxy {

namespace {

constexpr const char* kQuery =
    "SELECT n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid), "
    "p.prokind, p.provolatile, l.lanname, p.prosecdef "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal') "
    "ORDER BY 1, 2, 3";

std::string_view kind_name(std::string_view k) {
  if (k == "a") return "aggregate";
  if (k == "w") return "window";
  if (k == "p") return "procedure";
  return "function";
}

std::string_view volatility_name(std::string_view v) {
  if (v == "i") return "immutable";
  if (v == "s") return "stable";
  return "volatile";
}

}  // namespace

int check_functions(const std::string& conninfo, const policy::Policy* policy, std::ostream& out,
                    std::ostream& err) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    err << "cannot connect: " << PQerrorMessage(conn.get());
    return 2;
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(conn.get(), kQuery), &PQclear);
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    err << "cannot read pg_proc: " << PQresultErrorMessage(res.get());
    return 2;
  }
  int status = 0;
  std::set<policy::QualifiedName> unnamed;
  const int rows = PQntuples(res.get());
  out << rows << " app function" << (rows == 1 ? "" : "s") << "\n";
  for (int i = 0; i < rows; ++i) {
    auto field = [&](int c) { return std::string(PQgetvalue(res.get(), i, c)); };
    const policy::QualifiedName name{field(0), field(1)};
    const bool definer = field(6) == "t";
    out << policy::to_string(name) << "(" << field(2) << ")  " << kind_name(field(3)) << ", "
        << volatility_name(field(4)) << ", language " << field(5) << ", "
        << (definer ? "SECURITY DEFINER" : "security invoker");
    if (policy != nullptr) {
      auto it = policy->app_functions.find(name);
      if (it == policy->app_functions.end()) {
        out << "  policy: not named (refused)";
        unnamed.insert(name);
      } else {
        out << "  policy: reads = \"" << policy::function_reads_name(it->second.reads) << "\"";
        if (it->second.reads == policy::FunctionReads::kRls && definer) {
          out << "  PROBLEM: a SECURITY DEFINER function bypasses the caller's row-level "
                 "security; reads = \"rls\" cannot hold";
          status = 1;
        }
      }
    } else {
      unnamed.insert(name);
    }
    out << "\n";
  }
  if (!unnamed.empty()) {
    out << "\n# To allow one, add it to the policy with what it reads (none | shared | rls):\n";
    for (const policy::QualifiedName& n : unnamed) {
      out << "# [functions.\"" << n.schema << "." << n.name << "\"]\n# reads = \"none\"\n";
    }
  }
  return status;
}

}  // namespace tenantgate::proxy
