// Golden tests for the rewriter: every case in golden/*.txt is rewritten and
// compared with its expectation. The format is documented at the top of each
// file; in short:
//
//   @policy policy.toml          file-level: the policy file (default policy.toml)
//   @tenant text acme            file- or case-level identity (type value)
//   @user int 42                 `@user none`: no user identity
//   @database appdb
//   == case name                 starts a case; @-lines may follow
//   SELECT ...                   the SQL (several lines are joined with \n)
//   --> expected                 rewritten SQL (more lines until a blank line;
//                                the output must parse into the same statements),
//                                or UNCHANGED (forwarded byte for byte),
//                                or ERROR <sqlstate> <message substring>
//   params: $1 tenant users.tenant_id   expected ParamChecks (optional)
//
// A failure prints file:line, the input and the actual output, so that an
// expectation can be updated by copying the output.
#include <gtest/gtest.h>
#include <pg_query.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "policy/policy.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"
#include "tests/rewriter/equivalence.h"

namespace tenantgate::rewriter {
namespace {

namespace fs = std::filesystem;

struct GoldenCase {
  std::string file;
  int line = 0;
  std::string name;
  std::string policy_file = "policy.toml";
  policy::Identity identity;
  std::string sql;
  std::string expected;  // SQL, "UNCHANGED" or "ERROR ..."
  std::string params;    // "$1 tenant public.users.tenant_id, ..."; empty: none
};

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

bool apply_identity_line(const std::string& line, policy::Identity* id, std::string* policy_file) {
  std::istringstream in(line);
  std::string key;
  in >> key;
  std::string rest;
  std::getline(in >> std::ws, rest);
  if (key == "@policy") {
    *policy_file = rest;
    return true;
  }
  if (key == "@database") {
    id->database = rest;
    return true;
  }
  if (key == "@tenant" || key == "@user") {
    if (rest == "none") {
      if (key == "@user") id->user.reset();
      return true;
    }
    const std::size_t space = rest.find(' ');
    const std::optional<policy::ValueType> type = policy::parse_value_type(rest.substr(0, space));
    if (!type || space == std::string::npos) return false;
    std::string raw = rest.substr(space + 1);
    // \n and \t escapes let identity values hold line breaks and tabs.
    std::string value;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == 'n' || raw[i + 1] == 't')) {
        value += raw[i + 1] == 'n' ? '\n' : '\t';
        ++i;
      } else {
        value += raw[i];
      }
    }
    const std::optional<std::string> canonical = policy::canonical_value(*type, value);
    if (!canonical) return false;
    policy::TypedValue tv{*canonical, *type};
    if (key == "@tenant") {
      id->tenant = tv;
    } else {
      id->user = tv;
    }
    return true;
  }
  return false;
}

std::vector<GoldenCase> load_cases() {
  std::vector<GoldenCase> cases;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(TG_REWRITER_GOLDEN_DIR)) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& path : files) {
    std::ifstream in(path);
    policy::Identity file_identity;
    file_identity.tenant = {"acme", policy::ValueType::kText};
    file_identity.user = policy::TypedValue{"42", policy::ValueType::kInt};
    file_identity.database = "appdb";
    std::string file_policy = "policy.toml";
    std::string line;
    int lineno = 0;
    GoldenCase* current = nullptr;
    enum class State { kHeader, kSql, kExpected } state = State::kHeader;
    auto fail = [&](const std::string& why) {
      ADD_FAILURE() << path.filename().string() << ":" << lineno << ": " << why;
    };
    while (std::getline(in, line)) {
      ++lineno;
      line = rtrim(line);
      if (line.rfind("== ", 0) == 0) {
        cases.push_back(GoldenCase{});
        current = &cases.back();
        current->file = path.filename().string();
        current->line = lineno;
        current->name = line.substr(3);
        current->identity = file_identity;
        current->policy_file = file_policy;
        state = State::kSql;
        continue;
      }
      if (current == nullptr) {
        if (line.empty() || line[0] == '#') continue;
        if (!apply_identity_line(line, &file_identity, &file_policy)) fail("bad header line");
        continue;
      }
      if (state == State::kSql) {
        if (current->sql.empty() && line.rfind("@", 0) == 0) {
          if (!apply_identity_line(line, &current->identity, &current->policy_file)) {
            fail("bad identity line");
          }
          continue;
        }
        if (line.rfind("-->", 0) == 0) {
          current->expected = line.size() > 4 ? line.substr(4) : "";
          state = State::kExpected;
          continue;
        }
        if (!current->sql.empty()) current->sql += '\n';
        current->sql += line;
        continue;
      }
      // kExpected
      if (line.empty() || line[0] == '#') {
        current = nullptr;
        continue;
      }
      if (line.rfind("params: ", 0) == 0) {
        current->params = line.substr(8);
        continue;
      }
      current->expected += '\n';
      current->expected += line;
    }
  }
  return cases;
}

const std::vector<GoldenCase>& all_cases() {
  static const std::vector<GoldenCase> cases = load_cases();
  return cases;
}

std::shared_ptr<const policy::Policy> policy_for(const std::string& file) {
  static std::map<std::string, std::shared_ptr<const policy::Policy>> cache;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  auto& slot = cache[file];
  if (!slot) slot = policy::load_policy_file(std::string(TG_REWRITER_GOLDEN_DIR) + "/" + file);
  return slot;
}

std::string describe(const RewriteResult& r, const std::string& input) {
  if (!r.is_ok()) return "ERROR " + r.refusal().sqlstate + " " + r.refusal().message;
  if (!r.value().changed) return r.value().sql == input ? "UNCHANGED" : "UNCHANGED but different!";
  return r.value().sql;
}

std::string describe_params(const RewriteResult& r) {
  if (!r.is_ok()) return "";
  std::string out;
  for (const ParamCheck& c : r.value().param_checks) {
    if (!out.empty()) out += ", ";
    out += "$" + std::to_string(c.param_number) + " " +
           (c.field == IdentityField::kTenant ? "tenant" : "user") + " " + c.table + "." + c.column;
  }
  return out;
}

// gtest prints parameters on failure; keep it to the location.
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.file << ":" << c.line; }

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, Rewrite) {
  const GoldenCase& c = GetParam();
  const auto policy = policy_for(c.policy_file);
  const Rewriter rewriter(Options{});
  RewriteResult result = RewriteResult::refused("", "");
  run_with_large_stack([&] { result = rewriter.rewrite(c.sql, c.identity, *policy); });
  const std::string actual = describe(result, c.sql);
  bool match;
  if (c.expected.rfind("ERROR ", 0) == 0) {
    // ERROR <sqlstate> <substring of the message>
    const std::string rest = c.expected.substr(6);
    const std::string state = rest.substr(0, rest.find(' '));
    const std::string substring = rest.size() > 6 ? rest.substr(6) : "";
    match = !result.is_ok() && result.refusal().sqlstate == state &&
            result.refusal().message.find(substring) != std::string::npos;
  } else if (c.expected == "UNCHANGED" || !result.is_ok() || !result.value().changed) {
    match = actual == c.expected;
  } else {
    // The same statements: the text may be the deparsed tree or the client's
    // own text with the scoped references edited in (rewrite_template.h).
    run_with_large_stack([&] { match = testing::sql_difference(actual, c.expected).empty(); });
  }
  EXPECT_TRUE(match) << c.file << ":" << c.line << ": " << c.name << "\n  input:    " << c.sql
                     << "\n  expected: " << c.expected << "\n  actual:   " << actual;
  EXPECT_EQ(describe_params(result), c.params) << c.file << ":" << c.line << ": " << c.name;

  if (result.is_ok() && result.value().changed) {
    // The output with the real identity literals is valid SQL.
    PgQueryParseResult parsed = pg_query_parse(result.value().sql.c_str());
    EXPECT_EQ(parsed.error, nullptr) << c.file << ":" << c.line << ": output does not parse";
    pg_query_free_parse_result(parsed);
  }

  // The cache gives the same answer, on a miss and on a hit.
  RewriteCache cache(1 << 20);
  for (int round = 0; round < 2; ++round) {
    RewriteResult cached = RewriteResult::refused("", "");
    std::string difference;
    run_with_large_stack([&] {
      cached = cache.rewrite(rewriter, c.sql, c.identity, policy);
      difference = testing::difference(cached, result);
    });
    // A shape hit may format constants differently (rewrite_cache.h).
    EXPECT_EQ(difference, "") << c.file << ":" << c.line << " (cache round " << round << ")";
  }
}

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string name = info.param.file.substr(0, info.param.file.find('.')) + "_line" +
                     std::to_string(info.param.line);
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenTest, ::testing::ValuesIn(all_cases()), case_name);

TEST(GoldenFiles, HaveEnoughCases) { EXPECT_GE(all_cases().size(), 200u); }

}  // namespace
}  // namespace tenantgate::rewriter
