// Golden tests for the CockroachDB dialect layer (rewriter/dialect.h): every
// case of golden/dialect_cockroach.crdb and of the adapter corpus
// (tests/corpus/cockroach_adapters.crdb) is rewritten with
// Dialect::kCockroachDB and compared with its expectation, byte for byte:
//
//   == case name
//   SQL (several lines are joined with \n)
//   --> expected SQL | UNCHANGED | ERROR <sqlstate> <message substring>
//
// Identity: tenant text acme, user int 42, database appdb; policy
// golden/dialect_policy.toml. A changed output must translate again (it is
// CockroachDB text the dialect layer can read back), and the rewrite cache
// must give the same answer on a miss and on a hit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "policy/policy.h"
#include "rewriter/dialect.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {
namespace {

struct DialectCase {
  std::string file;
  int line = 0;
  std::string name;
  std::string sql;
  std::string expected;
};

std::vector<DialectCase> load(const std::string& path) {
  std::vector<DialectCase> cases;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::string line;
  int lineno = 0;
  DialectCase* current = nullptr;
  bool expecting = false;
  while (std::getline(in, line)) {
    ++lineno;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (line.rfind("== ", 0) == 0) {
      cases.push_back(
          {std::filesystem::path(path).filename().string(), lineno, line.substr(3), "", ""});
      current = &cases.back();
      expecting = false;
      continue;
    }
    if (current == nullptr) continue;
    if (!expecting) {
      if (line.rfind("-->", 0) == 0) {
        current->expected = line.size() > 4 ? line.substr(4) : "";
        expecting = true;
      } else if (!line.empty() && line[0] != '#') {
        if (!current->sql.empty()) current->sql += '\n';
        current->sql += line;
      }
      continue;
    }
    if (line.empty() || line[0] == '#') {
      current = nullptr;
      continue;
    }
    current->expected += "\n" + line;
  }
  return cases;
}

std::vector<DialectCase> all_cases() {
  std::vector<DialectCase> cases =
      load(std::string(TG_REWRITER_GOLDEN_DIR) + "/dialect_cockroach.crdb");
  std::vector<DialectCase> corpus = load(std::string(TG_CORPUS_DIR) + "/cockroach_adapters.crdb");
  cases.insert(cases.end(), corpus.begin(), corpus.end());
  return cases;
}

std::shared_ptr<const policy::Policy> dialect_policy() {
  static const auto policy =
      policy::load_policy_file(std::string(TG_REWRITER_GOLDEN_DIR) + "/dialect_policy.toml");
  return policy;
}

policy::Identity identity() {
  policy::Identity id;
  id.tenant = {"acme", policy::ValueType::kText};
  id.user = policy::TypedValue{"42", policy::ValueType::kInt};
  id.database = "appdb";
  return id;
}

std::string describe(const RewriteResult& r, const std::string& input) {
  if (!r.is_ok()) return "ERROR " + r.refusal().sqlstate + " " + r.refusal().message;
  if (!r.value().changed) return r.value().sql == input ? "UNCHANGED" : "UNCHANGED but different!";
  return r.value().sql;
}

void PrintTo(const DialectCase& c, std::ostream* os) { *os << c.file << ":" << c.line; }

class DialectGolden : public ::testing::TestWithParam<DialectCase> {};

TEST_P(DialectGolden, Rewrite) {
  const DialectCase& c = GetParam();
  const auto policy = dialect_policy();
  Options options;
  options.dialect = Dialect::kCockroachDB;
  const Rewriter rewriter(options);
  const policy::Identity id = identity();
  RewriteResult result = RewriteResult::refused("", "");
  run_with_large_stack([&] { result = rewriter.rewrite(c.sql, id, *policy); });
  const std::string actual = describe(result, c.sql);
  bool match = actual == c.expected;
  if (c.expected.rfind("ERROR ", 0) == 0) {
    const std::string rest = c.expected.substr(6);
    const std::string state = rest.substr(0, rest.find(' '));
    const std::string substring = rest.size() > 6 ? rest.substr(6) : "";
    match = !result.is_ok() && result.refusal().sqlstate == state &&
            result.refusal().message.find(substring) != std::string::npos;
  }
  EXPECT_TRUE(match) << c.file << ":" << c.line << ": " << c.name << "\n  input:    " << c.sql
                     << "\n  expected: " << c.expected << "\n  actual:   " << actual;

  if (result.is_ok() && result.value().changed) {
    // What is forwarded reads back through the dialect layer.
    CockroachTranslation again;
    std::optional<Refusal> refused;
    run_with_large_stack(
        [&] { refused = translate_cockroach(result.value().sql, *policy, "appdb", &again); });
    EXPECT_FALSE(refused.has_value()) << c.file << ":" << c.line << ": " << refused->message;
  }

  RewriteCache cache(1 << 20);
  for (int round = 0; round < 2; ++round) {
    RewriteResult cached = RewriteResult::refused("", "");
    run_with_large_stack([&] { cached = cache.rewrite(rewriter, c.sql, id, policy); });
    EXPECT_EQ(describe(cached, c.sql), actual) << c.file << ":" << c.line << " round " << round;
  }
}

// No prefix of a case crashes the dialect layer or makes it forward text it
// cannot read back: each is refused, forwarded byte for byte, or rewritten
// into text that translates again.
TEST(DialectRobustness, EveryPrefixOfEveryCase) {
  const auto policy = dialect_policy();
  Options options;
  options.dialect = Dialect::kCockroachDB;
  const Rewriter rewriter(options);
  const policy::Identity id = identity();
  std::size_t rewritten = 0;
  std::size_t refused = 0;
  run_with_large_stack([&] {
    for (const DialectCase& c : all_cases()) {
      for (std::size_t n = 1; n <= c.sql.size(); ++n) {
        const std::string prefix = c.sql.substr(0, n);
        const RewriteResult r = rewriter.rewrite(prefix, id, *policy);
        if (!r.is_ok()) {
          ++refused;
          continue;
        }
        if (!r.value().changed) {
          EXPECT_EQ(r.value().sql, prefix);
          continue;
        }
        ++rewritten;
        CockroachTranslation again;
        EXPECT_FALSE(translate_cockroach(r.value().sql, *policy, "appdb", &again).has_value())
            << c.file << ":" << c.line << " prefix " << n << ": " << r.value().sql;
      }
    }
  });
  EXPECT_GT(rewritten, 0u);
  EXPECT_GT(refused, 0u);
}

// `key = [...]` in policy.toml: the UPSERT conflict target.
TEST(DialectPolicy, KeyIsAListOfColumns) {
  const std::string head = "[tables.\"public.t\"]\nscope = \"tenant\"\n";
  const auto ok = policy::parse_policy(head + "key = [\"tenant_id\", \"Id\"]\n", "k.toml");
  const auto& table = ok->tables.begin()->second;
  EXPECT_EQ(table.key, (std::vector<std::string>{"tenant_id", "id"}));
  for (const char* bad : {"key = []\n", "key = \"id\"\n", "key = [\"a.b\"]\n", "key = [1]\n"}) {
    EXPECT_THROW((void)policy::parse_policy(head + bad, "k.toml"), policy::PolicyError) << bad;
  }
}

std::string case_name(const ::testing::TestParamInfo<DialectCase>& info) {
  std::string name = info.param.file.substr(0, info.param.file.find('.')) + "_line" +
                     std::to_string(info.param.line);
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Cockroach, DialectGolden, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace tenantgate::rewriter
