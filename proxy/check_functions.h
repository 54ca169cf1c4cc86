// `tenantgate check --dsn CONNINFO`: lists the app functions of a database
// (everything outside pg_catalog, information_schema and crdb_internal) with
// what a policy needs to name them, and what the policy in force says.
#pragma once

#include <ostream>
#include <string>

#include "policy/policy.h"

namespace tenantgate::proxy {

// Connects with libpq, prints one line per function (schema, name, identity
// arguments, kind, volatility, language, security, and the policy's entry
// when `policy` is given), then a [functions."schema.name"] stub for each
// one the policy does not name. Returns 0, 1 when the policy says reads =
// "rls" of a SECURITY DEFINER function (the claim cannot hold), or 2 when the
// database cannot be read (message on `err`).
int check_functions(const std::string& conninfo, const policy::Policy* policy, std::ostream& out,
                    std::ostream& err);

}  // namespace tenantgate::proxy
