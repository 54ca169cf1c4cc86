#include "proxy/catalog_snapshot.h"

#include <array>
#include <cstdint>
#include <optional>

namespace tenantgate::proxy {

namespace {

// Schemas whose functions are the server's own: the built-in list judges
// them (crdb_internal is denied outright).
constexpr std::string_view kQuery =
    "SELECT 'f', n.nspname, p.proname, '' FROM pg_catalog.pg_proc p "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal') "
    "UNION ALL "
    "SELECT 'o', o.oprname, n.nspname, p.proname FROM pg_catalog.pg_operator o "
    "JOIN pg_catalog.pg_proc p ON p.oid IN (o.oprcode, o.oprrest, o.oprjoin) "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal') "
    "UNION ALL "
    "SELECT 't', t.typname, n.nspname, p.proname FROM pg_catalog.pg_type t "
    "JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype "
    "ELSE t.oid END "
    "JOIN pg_catalog.pg_proc p ON p.oid IN (b.typinput, b.typreceive, b.typmodin) "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal') "
    "UNION ALL "
    "SELECT 't', t.typname, n.nspname, p.proname FROM pg_catalog.pg_cast c "
    "JOIN pg_catalog.pg_type t ON t.oid = c.casttarget "
    "JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal') "
    "UNION ALL "
    "SELECT 't', t.typname, n.nspname, p.proname FROM pg_catalog.pg_constraint c "
    "JOIN pg_catalog.pg_type t ON t.oid = c.contypid "
    "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass "
    "AND d.objid = c.oid AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass "
    "JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal')";

std::optional<int32_t> read_i32(std::string_view& in) {
  if (in.size() < 4) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const uint32_t v = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  in.remove_prefix(4);
  return static_cast<int32_t>(v);
}

std::optional<int16_t> read_i16(std::string_view& in) {
  if (in.size() < 2) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  in.remove_prefix(2);
  return static_cast<int16_t>((p[0] << 8) | p[1]);
}

}  // namespace

std::string_view catalog_snapshot_query() { return kQuery; }

bool CatalogSnapshotBuilder::add_row(std::string_view body) {
  auto count = read_i16(body);
  if (!count || *count != 4) return false;
  std::array<std::string, 4> f;
  for (std::string& field : f) {
    auto length = read_i32(body);
    if (!length || *length < 0 || static_cast<std::size_t>(*length) > body.size()) return false;
    field.assign(body.substr(0, static_cast<std::size_t>(*length)));
    body.remove_prefix(static_cast<std::size_t>(*length));
  }
  if (!body.empty()) return false;
  if (f[0] == "f") {
    catalog_->functions.insert({f[1], f[2]});
  } else if (f[0] == "o") {
    catalog_->operators[f[1]].insert({f[2], f[3]});
  } else if (f[0] == "t") {
    catalog_->types[f[1]].insert({f[2], f[3]});
  } else {
    return false;
  }
  return true;
}

std::shared_ptr<const policy::AppCatalog> CatalogSnapshotBuilder::finish() {
  catalog_->seal();
  std::shared_ptr<const policy::AppCatalog> out = std::move(catalog_);
  catalog_ = std::make_shared<policy::AppCatalog>();
  return out;
}

}  // namespace tenantgate::proxy
