// Statements for the execution tests (execution_test.cc): hand-written reads
// and writes, and a seeded generator of random SELECTs over the test schema
// (users, records, comments, tags, notes, countries).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tenantgate::rewriter {

[[nodiscard]] const std::vector<std::string>& hand_read_cases();
[[nodiscard]] const std::vector<std::string>& hand_write_cases();
// Reads that README.md lists as deliberate differences from RLS: run and
// reported, not failed.
[[nodiscard]] const std::vector<std::string>& hand_known_difference_cases();

// A statement with bound parameters (extended protocol). In params, "{T}" and
// "{U}" stand for the caller's tenant and user.
struct ParamCase {
  std::string sql;
  std::vector<std::string> params;
  bool write = false;
};

[[nodiscard]] const std::vector<ParamCase>& hand_param_cases();

struct RandomCase {
  std::string sql;
  int tenant_index = 0;  // into the test's tenant list
  int user = 1;
};

// Case `index` of the stream for `seed`; depends only on (seed, index), so one
// case can be regenerated without the ones before it.
[[nodiscard]] RandomCase random_select(std::uint64_t seed, std::uint64_t index);

// A random INSERT ... SELECT, UPDATE ... [FROM] or DELETE ... [USING] on a
// scoped table, with RETURNING; same seeding rules.
[[nodiscard]] RandomCase random_write(std::uint64_t seed, std::uint64_t index);

}  // namespace tenantgate::rewriter
