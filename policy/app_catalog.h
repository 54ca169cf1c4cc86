// A snapshot of the functions the application defined in its database (the
// names the function rules cannot know from the policy alone), loaded by the
// proxy from the backend (proxy/catalog_snapshot.h) and handed to the
// rewriter, which stays pure.
//
// Immutable once built; shared between the sessions of a database through
// std::shared_ptr<const AppCatalog>.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace tenantgate::policy {

struct AppCatalog {
  // Functions (and aggregates, procedures) outside pg_catalog and
  // information_schema.
  std::set<QualifiedName> functions;
  // Operator name (the symbol, whatever its schema) -> the app functions that
  // implement operators of that name.
  std::map<std::string, std::set<QualifiedName>> operators;
  // Type name (unqualified, as a TypeName's last part) -> the app functions
  // that run when a value is made of that type: its input, receive or typmod
  // input function, or the function of a cast to it.
  std::map<std::string, std::set<QualifiedName>> types;
  // Identifies the content within this process: snapshots with equal
  // content get equal ids, different content different ids (part of the
  // rewrite cache key). 0 until seal().
  std::uint64_t id = 0;

  // Sets `id` from the content; call once after filling it. Thread-safe.
  void seal();
};

}  // namespace tenantgate::policy
