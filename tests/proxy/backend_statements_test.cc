// The per-backend statement cache of transaction mode: shared names, LRU
// eviction with Close, protection of the statements of the running batch,
// failed Parses and resets. Each step is one call and what it answers.
#include "proxy/backend_statements.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tenantgate::proxy {
namespace {

StatementDefinition def(std::string sql, std::vector<std::uint32_t> types = {}) {
  return StatementDefinition{std::move(sql), std::move(types)};
}

// "tg_s1 parse close=tg_s2,tg_s3" or "tg_s1"
std::string show(const BackendStatements::Ensure& e) {
  std::string out = e.name + (e.parse ? " parse" : "");
  if (!e.close.empty()) {
    out += " close=";
    for (std::size_t i = 0; i < e.close.size(); ++i) out += (i ? "," : "") + e.close[i];
  }
  return out;
}

struct Step {
  enum Op { kEnsure, kBatch, kFailed, kClear } op;
  std::string arg;  // the SQL (ensure) or the name (failed)
  std::string expect;
};

struct Case {
  const char* name;
  std::size_t capacity;
  std::vector<Step> steps;
};

TEST(BackendStatementsTest, Table) {
  const std::vector<Case> cases = {
      {"the same statement is prepared once and shared",
       4,
       {{Step::kEnsure, "SELECT 1", "tg_s1 parse"},
        {Step::kEnsure, "SELECT 1", "tg_s1"},
        {Step::kEnsure, "SELECT 2", "tg_s2 parse"},
        {Step::kEnsure, "SELECT 1", "tg_s1"}}},
      {"the least recently used statement is closed when full",
       2,
       {{Step::kEnsure, "A", "tg_s1 parse"},
        {Step::kBatch, "", ""},
        {Step::kEnsure, "B", "tg_s2 parse"},
        {Step::kBatch, "", ""},
        {Step::kEnsure, "A", "tg_s1"},
        {Step::kBatch, "", ""},
        {Step::kEnsure, "C", "tg_s3 parse close=tg_s2"},
        {Step::kEnsure, "B", "tg_s4 parse close=tg_s1"}}},
      {"statements of the running batch are not evicted",
       2,
       {{Step::kEnsure, "A", "tg_s1 parse"},
        {Step::kEnsure, "B", "tg_s2 parse"},
        {Step::kEnsure, "C", "tg_s3 parse"},
        {Step::kEnsure, "A", "tg_s1"},
        {Step::kBatch, "", ""},
        {Step::kEnsure, "D", "tg_s4 parse close=tg_s2,tg_s3"}}},
      {"a failed Parse is forgotten and parsed again under a new name",
       4,
       {{Step::kEnsure, "SELECT x", "tg_s1 parse"},
        {Step::kFailed, "tg_s1", ""},
        {Step::kEnsure, "SELECT x", "tg_s2 parse"},
        {Step::kFailed, "tg_s9", ""},
        {Step::kEnsure, "SELECT x", "tg_s2"}}},
      {"a reset forgets every statement; names stay unique",
       4,
       {{Step::kEnsure, "A", "tg_s1 parse"},
        {Step::kClear, "", ""},
        {Step::kEnsure, "A", "tg_s2 parse"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    BackendStatements cache(c.capacity);
    int i = 0;
    for (const Step& s : c.steps) {
      SCOPED_TRACE("step " + std::to_string(i++));
      switch (s.op) {
        case Step::kEnsure:
          EXPECT_EQ(show(cache.ensure(def(s.arg))), s.expect);
          break;
        case Step::kBatch:
          cache.begin_batch();
          break;
        case Step::kFailed:
          cache.parse_failed(s.arg);
          break;
        case Step::kClear:
          cache.clear();
          break;
      }
    }
  }
}

TEST(BackendStatementsTest, ParameterTypesArePartOfTheStatement) {
  BackendStatements cache(8);
  EXPECT_EQ(show(cache.ensure(def("SELECT $1", {23}))), "tg_s1 parse");
  EXPECT_EQ(show(cache.ensure(def("SELECT $1", {25}))), "tg_s2 parse");
  EXPECT_EQ(show(cache.ensure(def("SELECT $1", {}))), "tg_s3 parse");
  EXPECT_EQ(show(cache.ensure(def("SELECT $1", {23}))), "tg_s1");
  EXPECT_EQ(cache.name_of(def("SELECT $1", {25})), "tg_s2");
  EXPECT_EQ(cache.name_of(def("SELECT $2", {25})), std::nullopt);
}

TEST(BackendStatementsTest, StaysWithinCapacityAcrossBatches) {
  BackendStatements cache(16);
  std::size_t closed = 0;
  for (int i = 0; i < 1000; ++i) {
    cache.begin_batch();
    closed += cache.ensure(def("SELECT " + std::to_string(i % 40))).close.size();
    EXPECT_LE(cache.size(), 16u);
  }
  // 40 statements in turn over 16 slots: every use after the first 16 misses.
  EXPECT_EQ(closed, 1000u - 16u);
}

}  // namespace
}  // namespace tenantgate::proxy
