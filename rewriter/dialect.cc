#include "rewriter/dialect.h"

#include <algorithm>
#include <array>
#include <map>

#include "rewriter/dialect_tokens.h"
#include "rewriter/pg_tree.h"

namespace tenantgate::rewriter {
namespace {

// What the walker reads in place of a statement the dialect layer decided.
constexpr std::string_view kPlaceholder = "SELECT 1";

Refusal refusal(const char* sqlstate, std::string message) {
  return Refusal{sqlstate, std::move(message)};
}

// An edit of the analysis text: [begin, end) replaced by text.
struct Edit {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string text;
};

std::string apply_edits(std::string_view sql, std::vector<Edit> edits) {
  std::stable_sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  std::string out;
  std::size_t pos = 0;
  for (const Edit& e : edits) {
    out.append(sql.substr(pos, e.begin - pos));
    out.append(e.text);
    pos = std::max(pos, e.end);
  }
  out.append(sql.substr(pos));
  return out;
}

bool is_any(const TokenView& t, std::size_t i, std::initializer_list<std::string_view> words) {
  for (std::string_view w : words) {
    if (t.is(i, w)) return true;
  }
  return false;
}

// Keywords that end a SELECT's FROM list (or a DELETE/UPDATE's WHERE).
bool ends_from_list(const TokenView& t, std::size_t i) {
  return is_any(t, i,
                {"WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR",
                 "UNION", "INTERSECT", "EXCEPT", "RETURNING"});
}

// Depth of every token of [first, last) relative to the range's start.
std::vector<int> depths(const TokenView& t, TokenRange r) {
  std::vector<int> out(r.last - r.first);
  int depth = 0;
  for (std::size_t i = r.first; i < r.last; ++i) {
    if (t.is_char(i, ')') || t.is_char(i, ']') || t.is_char(i, '}')) --depth;
    out[i - r.first] = depth;
    if (t.is_char(i, '(') || t.is_char(i, '[') || t.is_char(i, '{')) ++depth;
  }
  return out;
}

// A relation reference in FROM position: a (qualified) name after FROM,
// JOIN, ONLY, a comma of a FROM list, USING (DELETE), or UPDATE.
struct RelationRef {
  std::size_t first = 0;  // first token of the name
  std::size_t last = 0;   // last token of the name
  std::string relation;   // last part, folded
};

std::vector<RelationRef> relation_refs(const TokenView& t, TokenRange r) {
  std::vector<RelationRef> out;
  // The clause each open parenthesis level is in: FROM-like or not.
  std::vector<bool> in_from{false};
  for (std::size_t i = r.first; i < r.last; ++i) {
    if (t.is_char(i, '(') || t.is_char(i, '[') || t.is_char(i, '{')) {
      in_from.push_back(false);
      continue;
    }
    if (t.is_char(i, ')') || t.is_char(i, ']') || t.is_char(i, '}')) {
      if (in_from.size() > 1) in_from.pop_back();
      continue;
    }
    // ON and USING continue a FROM list (a join's condition, DELETE ...
    // USING) but never start one: `DISTINCT ON (a) x, y` is a target list.
    const bool continues_from = is_any(t, i, {"ON", "USING"});
    if (is_any(t, i, {"FROM", "JOIN"})) {
      in_from.back() = true;
    } else if (!continues_from && (t.at(i).keyword_kind == 4 || is_any(t, i, {"SET", "VALUES"}))) {
      if (!is_any(t, i, {"ONLY",    "AS",   "LATERAL", "NATURAL", "CROSS", "INNER", "LEFT",
                         "RIGHT",   "FULL", "OUTER",   "AND",     "OR",    "NOT",   "IS",
                         "NULL",    "TRUE", "FALSE",   "IN",      "LIKE",  "ILIKE", "SIMILAR",
                         "BETWEEN", "CASE", "WHEN",    "THEN",    "ELSE",  "END",   "DISTINCT",
                         "ANY",     "ALL",  "SOME",    "ARRAY",   "CAST"})) {
        in_from.back() = false;
      }
    }
    if (!t.is_name(i)) continue;
    const bool after_from_word = i > r.first && is_any(t, i - 1, {"FROM", "JOIN", "ONLY"});
    const bool after_comma = i > r.first && t.is_char(i - 1, ',') && in_from.back();
    const bool after_using = i > r.first && t.is(i - 1, "USING") && in_from.back();
    const bool update_target = i == r.first + 1 && t.is(r.first, "UPDATE");
    if (!after_from_word && !after_comma && !after_using && !update_target) continue;
    std::size_t last = i;
    while (t.is_char(last + 1, '.') && last + 2 < r.last && t.is_name(last + 2)) last += 2;
    if (t.is_char(last + 1, '(') || t.is_char(last + 1, '.')) {
      i = last;  // a function in FROM, or a name this reading does not know
      continue;
    }
    out.push_back({i, last, t.folded(last)});
    i = last;
  }
  return out;
}

// The hint after a relation name at token `at` (`@`): the index of its last
// token, or 0 when what follows is not a hint.
std::size_t index_hint_end(const TokenView& t, std::size_t at, std::size_t last) {
  if (!(at < last && t.text(at) == "@")) return 0;
  if (at + 1 < last && (t.is_name(at + 1) || t.is(at + 1, "PRIMARY"))) return at + 1;
  if (!t.is_char(at + 1, '{')) return 0;
  for (std::size_t i = at + 2; i < last; ++i) {
    if (t.is_char(i, '}')) return i > at + 2 ? i : 0;
    const bool ok = t.is_name(i) || t.at(i).keyword_kind != 0 || t.is_char(i, '=') ||
                    t.is_char(i, ',') || t.at(i).token == 266 /* ICONST */ || t.is_char(i, '[') ||
                    t.is_char(i, ']');
    if (!ok) return 0;
  }
  return 0;
}

bool is_join_hint(const TokenView& t, std::size_t i) {
  return is_any(t, i, {"HASH", "MERGE", "LOOKUP", "INVERTED", "STRAIGHT"});
}

bool is_join_type(const TokenView& t, std::size_t i) {
  return is_any(t, i, {"INNER", "LEFT", "RIGHT", "FULL", "OUTER"});
}

// The functions an AS OF SYSTEM TIME expression may call.
bool aost_function(const TokenView& t, std::size_t i) {
  return is_any(t, i,
                {"FOLLOWER_READ_TIMESTAMP", "EXPERIMENTAL_FOLLOWER_READ_TIMESTAMP",
                 "WITH_MAX_STALENESS", "WITH_MIN_TIMESTAMP"});
}

// Tokens [first, last) form a constant timestamp expression CockroachDB
// accepts after AS OF SYSTEM TIME.
std::optional<Refusal> check_aost_expression(const TokenView& t, std::size_t first,
                                             std::size_t last) {
  if (first >= last) return refusal("42601", "AS OF SYSTEM TIME needs a timestamp");
  for (std::size_t i = first; i < last; ++i) {
    if (t.is_constant(i) || t.is_param(i) || t.is_char(i, '(') || t.is_char(i, ')') ||
        t.is_char(i, ',') || t.is_char(i, '-') || t.is_char(i, '+') ||
        is_any(t, i, {"INTERVAL", "TRUE", "FALSE"})) {
      continue;
    }
    if (t.text(i) == "::" || t.at(i).token == 270 /* TYPECAST */) {
      if (!(is_any(t, i + 1,
                   {"TIMESTAMP", "TIMESTAMPTZ", "INTERVAL", "STRING", "TEXT", "DECIMAL", "INT",
                    "INT8", "BOOL"}))) {
        return refusal("0A000", "AS OF SYSTEM TIME: unsupported cast");
      }
      ++i;
      continue;
    }
    if (aost_function(t, i) && t.is_char(i + 1, '(')) continue;
    return refusal("0A000",
                   "AS OF SYSTEM TIME accepts constants and follower_read_timestamp(), "
                   "with_max_staleness() or with_min_timestamp() only, not " +
                       std::string(t.text(i)));
  }
  return std::nullopt;
}

// CockroachDB session variables the adapters read (SHOW) or set to a
// constant (SET): none changes which rows a statement sees.
constexpr std::array<std::string_view, 6> kShowVariables = {
    "CRDB_VERSION",         "AUTOCOMMIT_BEFORE_DDL", "TRANSACTION_STATUS",
    "TRANSACTION_PRIORITY", "DEFAULT_INT_SIZE",      "SERIAL_NORMALIZATION",
};
constexpr std::array<std::string_view, 5> kSetVariables = {
    "AUTOCOMMIT_BEFORE_DDL",
    "DEFAULT_INT_SIZE",
    "SERIAL_NORMALIZATION",
    "DEFAULT_TRANSACTION_PRIORITY",
    "DEFAULT_TRANSACTION_USE_FOLLOWER_READS",
};

template <std::size_t N>
bool in_list(const TokenView& t, std::size_t i, const std::array<std::string_view, N>& list) {
  for (std::string_view w : list) {
    if (t.is(i, w)) return true;
  }
  return false;
}

// A name chain (a, a.b, a.b.c) from `i`: the index after it, or i when none.
std::size_t skip_name(const TokenView& t, std::size_t i, std::size_t last) {
  if (i >= last || !t.is_name(i)) return i;
  std::size_t j = i + 1;
  while (j + 1 < last && t.is_char(j, '.') && t.is_name(j + 1)) j += 2;
  return j;
}

// Transaction modes of BEGIN / START TRANSACTION / SET TRANSACTION from `i`.
std::optional<Refusal> check_transaction_modes(const TokenView& t, std::size_t i,
                                               std::size_t last) {
  while (i < last) {
    if (t.is(i, "PRIORITY")) {
      if (!is_any(t, i + 1, {"LOW", "NORMAL", "HIGH"})) {
        return refusal("42601", "PRIORITY must be LOW, NORMAL or HIGH");
      }
      i += 2;
    } else if (t.is(i, "AS") && t.is(i + 1, "OF") && t.is(i + 2, "SYSTEM") && t.is(i + 3, "TIME")) {
      std::size_t end = i + 4;
      int depth = 0;
      while (end < last && (depth > 0 || !t.is_char(end, ','))) {
        if (t.is_char(end, '(')) ++depth;
        if (t.is_char(end, ')')) --depth;
        if (depth == 0 && is_any(t, end, {"PRIORITY", "ISOLATION", "READ", "NOT", "DEFERRABLE"}))
          break;
        ++end;
      }
      if (auto r = check_aost_expression(t, i + 4, end)) return r;
      i = end;
    } else if (is_any(t, i,
                      {"ISOLATION", "LEVEL", "SERIALIZABLE", "READ", "COMMITTED", "REPEATABLE",
                       "WRITE", "ONLY", "NOT", "DEFERRABLE", "TRANSACTION", "WORK"}) ||
               t.is_char(i, ',')) {
      ++i;
    } else {
      return refusal("0A000", "unsupported transaction mode " + std::string(t.text(i)));
    }
  }
  return std::nullopt;
}

class Translator {
 public:
  Translator(std::string_view sql, const TokenView& tokens, const policy::Policy& policy,
             const std::string& database)
      : sql_(sql), t_(tokens), policy_(policy), database_(database) {}

  // Fills *carry and adds edits for statement r; a refusal names the construct.
  std::optional<Refusal> statement(TokenRange r, CockroachCarry* carry);
  std::vector<Edit>& edits() { return edits_; }

 private:
  std::optional<Refusal> decided(TokenRange r, bool* decided);
  std::optional<Refusal> upsert(TokenRange r, std::size_t returning);
  std::optional<Refusal> as_of(TokenRange r, CockroachCarry* carry);
  std::optional<Refusal> order_limit(TokenRange r, std::size_t returning, CockroachCarry* carry);
  std::size_t previous_end(std::size_t i) const { return i == 0 ? 0 : t_.at(i - 1).end; }
  void cut(std::size_t first, std::size_t last) {
    edits_.push_back({previous_end(first), t_.at(last).end, ""});
  }

  std::string_view sql_;
  const TokenView& t_;
  const policy::Policy& policy_;
  const std::string& database_;
  std::vector<Edit> edits_;
};

std::optional<Refusal> Translator::decided(TokenRange r, bool* decided) {
  *decided = false;
  const std::size_t a = r.first;
  const std::size_t n = r.last - r.first;
  auto feature = [](std::string what) {
    return refusal("42501",
                   "permission denied: CockroachDB " + what + " is not allowed through tenantgate");
  };
  if (t_.is(a, "IMPORT")) return feature("IMPORT");
  if (t_.is(a, "EXPORT")) return feature("EXPORT");
  if (t_.is(a, "BACKUP")) return feature("BACKUP");
  if (t_.is(a, "RESTORE")) return feature("RESTORE");
  if ((t_.is(a, "CREATE") && t_.is(a + 1, "CHANGEFEED")) ||
      (t_.is(a, "EXPERIMENTAL") && t_.is(a + 1, "CHANGEFEED"))) {
    return feature("CHANGEFEED");
  }
  if (is_any(t_, a, {"SET", "SHOW", "RESET"}) && t_.is(a + 1, "CLUSTER") &&
      (t_.is(a + 2, "SETTING") || t_.is(a + 2, "SETTINGS"))) {
    return feature("CLUSTER SETTING");
  }
  if (t_.is(a, "CREATE")) {
    for (std::size_t i = a; i < r.last; ++i) {
      if (t_.is(i, "FAMILY")) return feature("column FAMILY (CREATE TABLE, DDL)");
    }
  }
  for (std::size_t i = a; i + 1 < r.last; ++i) {
    if (!t_.is_char(i, '[')) continue;
    const bool source = (i > a && is_any(t_, i - 1, {"FROM", "JOIN", "LATERAL"})) ||
                        is_any(t_, i + 1,
                               {"SHOW", "SELECT", "INSERT", "UPDATE", "DELETE", "UPSERT", "EXPLAIN",
                                "WITH", "VALUES", "TABLE"});
    if (source) return feature("square-bracket statement source [...]");
  }

  // Transaction forms with CockroachDB modes.
  std::size_t modes = 0;
  if (t_.is(a, "BEGIN")) modes = a + 1;
  if (t_.is(a, "START") && t_.is(a + 1, "TRANSACTION")) modes = a + 2;
  if (t_.is(a, "SET") && t_.is(a + 1, "TRANSACTION")) modes = a + 2;
  if (t_.is(a, "SET") && t_.is(a + 1, "SESSION") && t_.is(a + 2, "CHARACTERISTICS")) modes = 0;
  if (modes != 0) {
    bool cockroach = false;
    for (std::size_t i = modes; i < r.last; ++i) {
      cockroach = cockroach || t_.is(i, "PRIORITY") || (t_.is(i, "SYSTEM") && t_.is(i + 1, "TIME"));
    }
    if (!cockroach) return std::nullopt;
    if (auto refused = check_transaction_modes(t_, modes, r.last)) return refused;
    *decided = true;
    return std::nullopt;
  }

  if (t_.is(a, "SHOW")) {
    std::size_t i = a + 1;
    if (n == 3 && t_.is(i, "TRANSACTION") && is_any(t_, i + 1, {"STATUS", "PRIORITY"})) {
      *decided = true;
      return std::nullopt;
    }
    if (n == 3 && t_.is(i, "SESSION") && !t_.is(i + 1, "AUTHORIZATION")) {
      // SHOW SESSION <variable>: SHOW <variable>, which the walker judges,
      // unless it is a CockroachDB one.
      if (in_list(t_, i + 1, kShowVariables)) {
        *decided = true;
        return std::nullopt;
      }
      edits_.push_back({t_.at(i).begin, t_.at(i + 1).begin, ""});
      return std::nullopt;
    }
    if (n == 2 && in_list(t_, i, kShowVariables)) {
      *decided = true;
      return std::nullopt;
    }
    // Introspection that reveals catalog shapes only.
    auto with_comment = [&](std::size_t j) {
      return j == r.last || (j + 2 == r.last && t_.is(j, "WITH") && t_.is(j + 1, "COMMENT"));
    };
    if (t_.is(i, "TABLES") || t_.is(i, "SCHEMAS") || t_.is(i, "SEQUENCES") || t_.is(i, "TYPES") ||
        t_.is(i, "ENUMS")) {
      std::size_t j = i + 1;
      if (t_.is(j, "FROM")) j = skip_name(t_, j + 1, r.last);
      if (with_comment(j)) {
        *decided = true;
        return std::nullopt;
      }
      return refusal("0A000", "unsupported form of SHOW " + std::string(t_.text(i)));
    }
    if (t_.is(i, "DATABASES")) {
      if (with_comment(i + 1)) {
        *decided = true;
        return std::nullopt;
      }
      return refusal("0A000", "unsupported form of SHOW DATABASES");
    }
    if (is_any(t_, i, {"COLUMNS", "INDEXES", "INDEX", "KEYS", "CONSTRAINTS", "CONSTRAINT"})) {
      if (t_.is(i + 1, "FROM")) {
        const std::size_t j = skip_name(t_, i + 2, r.last);
        if (j > i + 2 && with_comment(j)) {
          *decided = true;
          return std::nullopt;
        }
      }
      return refusal("0A000", "unsupported form of SHOW " + std::string(t_.text(i)));
    }
    if (t_.is(i, "CREATE")) {
      std::size_t j = i + 1;
      if (is_any(t_, j, {"TABLE", "VIEW", "SEQUENCE"})) ++j;
      const std::size_t end = skip_name(t_, j, r.last);
      if (end > j && end == r.last) {
        *decided = true;
        return std::nullopt;
      }
      return refusal("0A000", "unsupported form of SHOW CREATE");
    }
    if (is_any(t_, i,
               {"JOBS",     "JOB",        "SESSIONS",   "QUERIES",    "STATEMENTS", "RANGES",
                "RANGE",    "STATISTICS", "HISTOGRAM",  "LOCKS",      "TRACE",      "KV",
                "GRANTS",   "USERS",      "ROLES",      "ZONE",       "ALL",        "CLUSTER",
                "BACKUP",   "BACKUPS",    "CHANGEFEED", "PARTITIONS", "REGIONS",    "SURVIVAL",
                "FULL",     "LAST",       "SCHEDULES",  "DEFAULT",    "SYSTEM",     "TENANT",
                "TENANTS",  "CREATE",     "FUNCTIONS",  "PROCEDURES", "SUPER",      "POLICIES",
                "TRIGGERS", "LOGICAL",    "EXTERNAL",   "COMMIT",     "INSPECT",    "REGION",
                "DATABASE"})) {
      return feature("SHOW " + std::string(t_.text(i)) +
                     " (it reveals other sessions, statistics or cluster state)");
    }
    return std::nullopt;
  }

  if (t_.is(a, "SET") || (t_.is(a, "SET") && t_.is(a + 1, "SESSION"))) {
    std::size_t i = a + 1;
    if (t_.is(i, "SESSION") || t_.is(i, "LOCAL")) ++i;
    if (in_list(t_, i, kSetVariables) && (t_.is_char(i + 1, '=') || t_.is(i + 1, "TO")) &&
        i + 3 == r.last &&
        (t_.is_constant(i + 2) || t_.is_name(i + 2) ||
         is_any(t_, i + 2, {"ON", "TRUE", "FALSE", "DEFAULT"}))) {
      *decided = true;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The first token of [r) at depth 0 that is `word`, or r.last.
std::size_t find_top(const TokenView& t, TokenRange r, const std::vector<int>& depth,
                     std::string_view word) {
  for (std::size_t i = r.first; i < r.last; ++i) {
    if (depth[i - r.first] == 0 && t.is(i, word)) return i;
  }
  return r.last;
}

std::optional<Refusal> Translator::upsert(TokenRange r, std::size_t returning) {
  // UPSERT INTO name [AS alias] ( cols ) ...
  const std::size_t a = r.first;
  if (!t_.is(a + 1, "INTO")) return refusal("42601", "UPSERT needs INTO");
  const std::size_t name_first = a + 2;
  const std::size_t name_end = skip_name(t_, name_first, r.last);
  if (name_end == name_first) return refusal("42601", "UPSERT needs a table name");
  std::size_t i = name_end;
  if (t_.is(i, "AS")) i += 2;
  if (!t_.is_char(i, '(')) {
    return refusal("0A000",
                   "UPSERT needs a column list through tenantgate (the policy columns must be "
                   "placed)");
  }
  std::vector<std::string> columns;
  ++i;
  while (i < r.last && !t_.is_char(i, ')')) {
    if (!t_.is_name(i)) return refusal("0A000", "UPSERT column list: unsupported entry");
    columns.push_back(t_.folded(i));
    ++i;
    if (t_.is_char(i, ',')) ++i;
  }
  if (!t_.is_char(i, ')')) return refusal("42601", "UPSERT column list is not closed");
  for (std::size_t j = i; j < r.last; ++j) {
    if (t_.is(j, "CONFLICT")) return refusal("42601", "UPSERT cannot have ON CONFLICT");
  }

  // Resolve the target as the walker will.
  std::string catalog, schema, name;
  const std::size_t parts = (name_end - name_first + 1) / 2;
  std::vector<std::string> names;
  for (std::size_t j = name_first; j < name_end; j += 2) names.push_back(t_.folded(j));
  if (parts == 3) catalog = names[0];
  if (parts >= 2) schema = names[parts - 2];
  name = names.back();
  const std::optional<policy::Resolution> res = policy_.resolve(catalog, schema, name, database_);
  if (res && res->kind == policy::Resolution::Kind::kTable &&
      res->table->scope == policy::Scope::kPolicies) {
    return refusal("0A000", "UPSERT into " + policy::to_string(res->name) +
                                " (a table with row policies) is not supported; use INSERT ... "
                                "ON CONFLICT");
  }
  const bool scoped =
      res && res->kind == policy::Resolution::Kind::kTable &&
      (res->table->scope == policy::Scope::kTenant || res->table->scope == policy::Scope::kOwner ||
       res->table->scope == policy::Scope::kTenantOwner);
  if (!scoped) {
    const std::string shown = res ? policy::to_string(res->name) : name;
    return refusal("42501", "permission denied: UPSERT into " + shown +
                                " (only tables scoped by tenant or owner take writes)");
  }
  const policy::TablePolicy& table = *res->table;
  if (table.key.empty()) {
    return refusal("0A000", "UPSERT into " + policy::to_string(table.name) +
                                " needs the table's primary key: set key = [...] for it in the "
                                "policy");
  }
  std::string conflict = " ON CONFLICT (";
  for (std::size_t k = 0; k < table.key.size(); ++k) {
    if (k > 0) conflict += ", ";
    conflict += policy::quote_identifier(table.key[k]);
  }
  conflict += ") DO ";
  std::string set;
  for (const std::string& c : columns) {
    const bool keyed = std::find(table.key.begin(), table.key.end(), c) != table.key.end();
    if (keyed || c == table.tenant_column || c == table.owner_column) continue;
    if (!set.empty()) set += ", ";
    const std::string q = policy::quote_identifier(c);
    set += q + " = excluded." + q;
  }
  conflict += set.empty() ? "NOTHING" : "UPDATE SET " + set;
  edits_.push_back({t_.at(a).begin, t_.at(a).end, "INSERT"});
  const std::size_t at = returning < r.last ? previous_end(returning) : t_.at(r.last - 1).end;
  edits_.push_back({at, at, conflict});
  return std::nullopt;
}

std::optional<Refusal> Translator::as_of(TokenRange r, CockroachCarry* carry) {
  const std::vector<int> depth = depths(t_, r);
  std::size_t aost = r.last;
  for (std::size_t i = r.first; i + 3 < r.last; ++i) {
    if (t_.is(i, "AS") && t_.is(i + 1, "OF") && t_.is(i + 2, "SYSTEM") && t_.is(i + 3, "TIME")) {
      if (aost != r.last || depth[i - r.first] != 0) {
        return refusal("0A000",
                       "AS OF SYSTEM TIME is supported once, after the FROM list of a top-level "
                       "SELECT");
      }
      aost = i;
    }
  }
  if (aost == r.last) return std::nullopt;
  const bool select = t_.is(r.first, "SELECT") || t_.is(r.first, "WITH");
  const std::size_t from = find_top(t_, r, depth, "FROM");
  if (!select || from > aost) {
    return refusal("0A000", "AS OF SYSTEM TIME is supported after the FROM list of a SELECT only");
  }
  for (std::size_t i = from; i < aost; ++i) {
    if (depth[i - r.first] == 0 && ends_from_list(t_, i)) {
      return refusal("0A000", "AS OF SYSTEM TIME must follow the first FROM list");
    }
  }
  std::size_t end = aost + 4;
  while (end < r.last && !(depth[end - r.first] == 0 && ends_from_list(t_, end))) ++end;
  if (auto refused = check_aost_expression(t_, aost + 4, end)) return refused;
  carry->as_of = std::string(t_.span(aost, end - 1));
  cut(aost, end - 1);
  return std::nullopt;
}

std::optional<Refusal> Translator::order_limit(TokenRange r, std::size_t returning,
                                               CockroachCarry* carry) {
  const std::vector<int> depth = depths(t_, r);
  std::size_t first = r.last;
  for (std::size_t i = r.first; i < returning; ++i) {
    if (depth[i - r.first] == 0 && (t_.is(i, "ORDER") || t_.is(i, "LIMIT"))) {
      first = i;
      break;
    }
  }
  if (first == r.last) return std::nullopt;
  std::size_t i = first;
  if (t_.is(i, "ORDER")) {
    if (!t_.is(i + 1, "BY")) return refusal("42601", "ORDER needs BY");
    i += 2;
    while (true) {
      const std::size_t after = skip_name(t_, i, returning);
      if (after == i) {
        return refusal(
            "0A000", "ORDER BY of " + std::string(t_.text(r.first)) + " accepts column names only");
      }
      i = after;
      if (is_any(t_, i, {"ASC", "DESC"})) ++i;
      if (t_.is(i, "NULLS") && is_any(t_, i + 1, {"FIRST", "LAST"})) i += 2;
      if (!t_.is_char(i, ',')) break;
      ++i;
    }
  }
  if (t_.is(i, "LIMIT")) {
    if (i + 1 >= returning || !(t_.at(i + 1).token == 266 /* ICONST */ || t_.is_param(i + 1))) {
      return refusal("0A000", "LIMIT of " + std::string(t_.text(r.first)) +
                                  " accepts an integer or a parameter only");
    }
    i += 2;
  }
  if (i != returning) {
    return refusal("0A000", "unsupported clause after " + std::string(t_.text(r.first)) +
                                " ... ORDER BY / LIMIT");
  }
  carry->tail = std::string(t_.span(first, returning - 1));
  cut(first, returning - 1);
  return std::nullopt;
}

std::optional<Refusal> Translator::statement(TokenRange r, CockroachCarry* carry) {
  if (r.first == r.last) return std::nullopt;
  bool is_decided = false;
  if (auto refused = decided(r, &is_decided)) return refused;
  if (is_decided) {
    carry->original = std::string(t_.span(r.first, r.last - 1));
    edits_.push_back({t_.at(r.first).begin, t_.at(r.last - 1).end, std::string(kPlaceholder)});
    return std::nullopt;
  }
  const std::vector<int> depth = depths(t_, r);
  const bool write = is_any(t_, r.first, {"INSERT", "UPSERT", "UPDATE", "DELETE"});
  std::size_t returning = find_top(t_, r, depth, "RETURNING");
  if (!write) returning = r.last;
  if (returning + 2 == r.last && t_.is(returning + 1, "NOTHING")) {
    carry->returning_nothing = std::string(t_.span(returning, returning + 1));
    cut(returning, returning + 1);
  }
  if (t_.is(r.first, "UPSERT")) {
    if (auto refused = upsert(r, returning)) return refused;
    carry->upsert = true;
  }
  if (t_.is(r.first, "UPDATE") || t_.is(r.first, "DELETE")) {
    if (auto refused = order_limit(r, returning, carry)) return refused;
  }
  if (auto refused = as_of(r, carry)) return refused;

  for (const RelationRef& ref : relation_refs(t_, r)) {
    CockroachCarry::IndexHint hint{ref.relation, ""};
    if (const std::size_t end = index_hint_end(t_, ref.last + 1, r.last)) {
      hint.hint = std::string(t_.span(ref.last + 1, end));
      edits_.push_back({t_.at(ref.last + 1).begin, t_.at(end).end, ""});
    }
    carry->index_hints.push_back(std::move(hint));
  }
  bool any_index_hint = false;
  for (const auto& h : carry->index_hints) any_index_hint = any_index_hint || !h.hint.empty();
  if (!any_index_hint) carry->index_hints.clear();

  bool any_join_hint = false;
  for (std::size_t i = r.first; i < r.last; ++i) {
    if (!t_.is(i, "JOIN")) continue;
    std::string hint;
    if (i >= r.first + 2 && is_join_hint(t_, i - 1) && is_join_type(t_, i - 2)) {
      hint = std::string(t_.text(i - 1));
      edits_.push_back({t_.at(i - 1).begin, t_.at(i).begin, ""});
      any_join_hint = true;
    }
    carry->join_hints.push_back(std::move(hint));
  }
  if (!any_join_hint) carry->join_hints.clear();
  return std::nullopt;
}

// Puts one statement's carried syntax back into text[b, e) of the walker's
// output (tokens r of `t`), as edits.
std::optional<Refusal> restore_statement(const TokenView& t, TokenRange r,
                                         const CockroachCarry& carry, std::vector<Edit>* edits) {
  if (carry.original) {
    if (r.first == r.last) return refusal("XX000", "internal error: statement lost");
    edits->push_back({t.at(r.first).begin, t.at(r.last - 1).end, *carry.original});
    return std::nullopt;
  }
  if (r.first == r.last) return std::nullopt;
  const std::vector<int> depth = depths(t, r);
  const std::size_t end_at = t.at(r.last - 1).end;
  const bool write = is_any(t, r.first, {"INSERT", "UPDATE", "DELETE", "WITH"});
  std::size_t returning = r.last;
  if (write) returning = find_top(t, r, depth, "RETURNING");
  std::string at_end;
  if (!carry.tail.empty()) {
    if (returning < r.last) {
      edits->push_back({t.at(returning - 1).end, t.at(returning - 1).end, " " + carry.tail});
    } else {
      at_end += " " + carry.tail;
    }
  }
  if (!carry.returning_nothing.empty()) {
    if (returning < r.last) return refusal("0A000", "RETURNING NOTHING next to RETURNING");
    at_end += " " + carry.returning_nothing;
  }
  if (!at_end.empty()) edits->push_back({end_at, end_at, at_end});

  if (!carry.as_of.empty()) {
    const std::size_t from = find_top(t, r, depth, "FROM");
    if (from == r.last) return refusal("0A000", "AS OF SYSTEM TIME: no FROM list to follow");
    std::size_t i = from + 1;
    while (i < r.last && !(depth[i - r.first] == 0 && ends_from_list(t, i))) ++i;
    edits->push_back({t.at(i - 1).end, t.at(i - 1).end, " " + carry.as_of});
  }

  if (!carry.index_hints.empty()) {
    const std::vector<RelationRef> refs = relation_refs(t, r);
    std::map<std::string, std::vector<const CockroachCarry::IndexHint*>> wanted;
    for (const auto& h : carry.index_hints) wanted[h.relation].push_back(&h);
    std::map<std::string, std::vector<const RelationRef*>> found;
    for (const auto& ref : refs) found[ref.relation].push_back(&ref);
    for (const auto& [relation, hints] : wanted) {
      bool hinted = false;
      bool uniform = true;
      for (const auto* h : hints) {
        hinted = hinted || !h->hint.empty();
        uniform = uniform && h->hint == hints.front()->hint;
      }
      if (!hinted) continue;
      const auto& places = found[relation];
      if (places.size() != hints.size() || (!uniform && hints.size() > 1)) {
        return refusal("0A000", "index hint on " + relation +
                                    ": cannot place it in the rewritten statement (a table "
                                    "referenced more than once needs the same hint on each "
                                    "reference)");
      }
      for (std::size_t k = 0; k < hints.size(); ++k) {
        if (hints[k]->hint.empty()) continue;
        const std::size_t at = t.at(places[k]->last).end;
        edits->push_back({at, at, hints[k]->hint});
      }
    }
  }

  if (!carry.join_hints.empty()) {
    std::vector<std::size_t> joins;
    for (std::size_t i = r.first; i < r.last; ++i) {
      if (t.is(i, "JOIN")) joins.push_back(i);
    }
    if (joins.size() != carry.join_hints.size()) {
      return refusal("0A000", "join hint: cannot place it in the rewritten statement");
    }
    for (std::size_t k = 0; k < joins.size(); ++k) {
      if (carry.join_hints[k].empty()) continue;
      const std::size_t j = joins[k];
      const bool typed = j > r.first && is_join_type(t, j - 1);
      if (!typed && j > r.first && (t.is(j - 1, "CROSS") || t.is(j - 1, "NATURAL"))) {
        return refusal("0A000", "join hint: cannot place it in the rewritten statement");
      }
      edits->push_back(
          {t.at(j).begin, t.at(j).begin, (typed ? "" : "INNER ") + carry.join_hints[k] + " "});
    }
  }
  return std::nullopt;
}

// A construct added here needs its keyword in might_hold_cockroach_syntax.
std::optional<Refusal> translate(std::string_view sql, const policy::Policy& policy,
                                 const std::string& database, CockroachTranslation* out) {
  const std::string text(sql);
  std::vector<SqlToken> tokens;
  if (auto refused = scan_tokens(text, &tokens)) return refused;
  const TokenView view(text, tokens);
  Translator translator(text, view, policy, database);
  out->statements.clear();
  for (const TokenRange& r : split_statements(view)) {
    CockroachCarry carry;
    if (auto refused = translator.statement(r, &carry)) return refused;
    out->statements.push_back(std::move(carry));
  }
  out->analysis = translator.edits().empty() ? text : apply_edits(text, translator.edits());
  return std::nullopt;
}

// The carries as the rewritten text can show them: only the hinted FROM
// references (it has references of its own, unhinted), no UPSERT.
std::vector<CockroachCarry> hinted_only(std::vector<CockroachCarry> carries) {
  for (CockroachCarry& c : carries) {
    std::erase_if(c.index_hints, [](const CockroachCarry::IndexHint& h) { return h.hint.empty(); });
    c.upsert = false;  // the rewritten text holds the INSERT ... ON CONFLICT form
  }
  return carries;
}

}  // namespace

bool CockroachCarry::empty() const {
  return !original && as_of.empty() && index_hints.empty() && join_hints.empty() && tail.empty() &&
         returning_nothing.empty();
}

bool CockroachTranslation::must_forward_analysis() const {
  return std::any_of(statements.begin(), statements.end(),
                     [](const CockroachCarry& c) { return c.upsert; });
}

bool CockroachTranslation::needs_restore() const {
  return std::any_of(statements.begin(), statements.end(),
                     [](const CockroachCarry& c) { return !c.empty(); });
}

namespace {

// False when `sql` cannot hold any construct the layer handles: every path
// of translate() needs `@`, `[` or one of these keywords as a whole word
// (ASCII, case-insensitive), so the scan is skipped for most ORM reads.
bool might_hold_cockroach_syntax(std::string_view sql) {
  if (sql.find_first_of("@[") != std::string_view::npos) return true;
  static constexpr std::array<std::string_view, 23> kWords = {
      "upsert",     "system",  "nothing", "priority", "import",   "export", "backup", "restore",
      "changefeed", "cluster", "show",    "set",      "begin",    "start",  "create", "reset",
      "hash",       "merge",   "lookup",  "inverted", "straight", "update", "delete"};
  auto word_char = [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '$' || c >= 0x80;
  };
  std::size_t i = 0;
  while (i < sql.size()) {
    if (!word_char(static_cast<unsigned char>(sql[i]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < sql.size() && word_char(static_cast<unsigned char>(sql[j]))) ++j;
    if (j - i <= 10) {
      std::string word(sql.substr(i, j - i));
      for (char& c : word) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      if (std::find(kWords.begin(), kWords.end(), word) != kWords.end()) return true;
    }
    i = j;
  }
  return false;
}

}  // namespace

std::optional<Refusal> translate_cockroach(std::string_view sql, const policy::Policy& policy,
                                           const std::string& database, CockroachTranslation* out) {
  if (!might_hold_cockroach_syntax(sql)) {
    out->analysis.assign(sql);
    out->statements.clear();
    return std::nullopt;
  }
  if (auto refused = translate(sql, policy, database, out)) {
    if (refused->sqlstate == "42601") {
      refused->message += " (CockroachDB syntax tenantgate does not know is refused)";
    }
    return refused;
  }
  return std::nullopt;
}

std::optional<Refusal> restore_cockroach(const CockroachTranslation& translation,
                                         const policy::Policy& policy, const std::string& database,
                                         std::string* text) {
  if (!translation.needs_restore()) return std::nullopt;
  std::vector<SqlToken> tokens;
  if (auto refused = scan_tokens(*text, &tokens)) return refused;
  const TokenView view(*text, tokens);
  const std::vector<TokenRange> ranges = split_statements(view);
  if (ranges.size() != translation.statements.size()) {
    return refusal("XX000", "internal error: the rewritten text has other statements");
  }
  std::vector<Edit> edits;
  for (std::size_t k = 0; k < ranges.size(); ++k) {
    if (auto refused = restore_statement(view, ranges[k], translation.statements[k], &edits)) {
      return refused;
    }
  }
  std::string restored = apply_edits(*text, std::move(edits));

  // Verify: the restored text must translate back into the walker's
  // statements, carrying the same CockroachDB syntax.
  CockroachTranslation again;
  if (auto refused = translate(restored, policy, database, &again)) {
    return refusal("0A000", "cannot restore CockroachDB syntax: " + refused->message);
  }
  const auto fail = refusal("0A000",
                            "cannot restore the CockroachDB syntax of the rewritten statement "
                            "exactly; refused");
  if (hinted_only(again.statements) != hinted_only(translation.statements)) return fail;
  pg_query::ParseResult expected;
  pg_query::ParseResult actual;
  if (parse_sql(*text, &expected) || parse_sql(again.analysis, &actual)) return fail;
  if (!same_tree(expected, actual)) return fail;
  *text = std::move(restored);
  return std::nullopt;
}

}  // namespace tenantgate::rewriter
