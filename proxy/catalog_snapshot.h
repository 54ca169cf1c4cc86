// The app catalog snapshot (policy/app_catalog.h): the query the proxy runs
// on each backend connection right after login, and the parsing of its rows.
// No sockets here: the session sends catalog_snapshot_query() and feeds the
// DataRow bodies (protocol 55.7, "DataRow") to a CatalogSnapshotBuilder.
//
// The query reads only pg_catalog, which every role may read; on a backend
// where it fails, the session is refused (fail closed: without the snapshot
// the rewriter cannot tell an app function from a column in x.f).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "policy/app_catalog.h"

namespace tenantgate::proxy {

// One statement (simple protocol) returning rows (kind, a, b, c), all text:
//   'f', schema, function name, ''   a function outside pg_catalog,
//                                    information_schema and crdb_internal
//   'o', operator name, schema, fn   an operator (any schema) whose code or
//                                    selectivity estimator is such a function
//   't', type name, schema, fn       a type whose input, receive or typmod
//                                    input function (a domain: its base
//                                    type's), a cast to it, or a domain
//                                    CHECK on it calls such a function
[[nodiscard]] std::string_view catalog_snapshot_query();

class CatalogSnapshotBuilder {
 public:
  // Adds one DataRow body; false when it is not a row of the query above.
  [[nodiscard]] bool add_row(std::string_view data_row_body);
  // The sealed snapshot; the builder is empty afterwards.
  [[nodiscard]] std::shared_ptr<const policy::AppCatalog> finish();

 private:
  std::shared_ptr<policy::AppCatalog> catalog_ = std::make_shared<policy::AppCatalog>();
};

}  // namespace tenantgate::proxy
