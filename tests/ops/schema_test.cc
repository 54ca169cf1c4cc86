// policy init and check --dsn over a schema given as data: what is guessed,
// and that the generated policy passes its own check.
#include "ops/schema.h"

#include <gtest/gtest.h>

namespace tenantgate::ops {
namespace {

std::vector<SchemaTable> example() {
  return {
      {{"public", "countries"}, 'r', {{"code", "text"}, {"name", "text"}}},
      {{"public", "records"},
       'r',
       {{"id", "int8"}, {"tenant_id", "text"}, {"created_by", "int8"}, {"data", "text"}}},
      {{"public", "users"}, 'r', {{"id", "int8"}, {"tenant_id", "text"}, {"email", "text"}}},
      {{"public", "audit_view"}, 'v', {{"id", "int8"}}},
  };
}

TEST(SchemaTest, PolicyInitGuessesScopes) {
  const std::string text = policy_init(example());
  EXPECT_NE(text.find("[tables.\"public.users\"]\nscope = \"tenant\"\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("[tables.\"public.records\"]\nscope = \"tenant_owner\"\n"),
            std::string::npos);
  EXPECT_NE(text.find("owner_column = \"created_by\""), std::string::npos);
  EXPECT_NE(text.find("# [tables.\"public.countries\"]"), std::string::npos);
  EXPECT_NE(text.find("# [tables.\"public.audit_view\"]  # view"), std::string::npos);
  EXPECT_NE(text.find("Guesses:"), std::string::npos);
  // What it writes loads as a policy and fits the schema it came from.
  auto policy = policy::parse_policy(text, "policy.toml");
  EXPECT_EQ(policy->tables.size(), 2u);
  for (const auto& f :
       check_schema(*policy, example(), policy::ValueType::kText, policy::ValueType::kInt)) {
    EXPECT_EQ(f.severity, SchemaFinding::Severity::kNote) << f.message;
  }
}

TEST(SchemaTest, CheckFindsMissingTablesColumnsAndTypes) {
  auto policy = policy::parse_policy(R"(
[tables."public.users"]
scope = "tenant"
tenant_column = "tenant_id"
[tables."public.records"]
scope = "tenant_owner"
tenant_column = "tenant_id"
owner_column = "owner_id"
[tables."public.gone"]
scope = "tenant"
tenant_column = "tenant_id"
)",
                                     "policy.toml");
  auto findings =
      check_schema(*policy, example(), policy::ValueType::kUuid, policy::ValueType::kInt);
  std::vector<std::string> errors, notes;
  for (const auto& f : findings) {
    (f.severity == SchemaFinding::Severity::kError ? errors : notes).push_back(f.message);
  }
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "policy.toml:9: table public.gone does not exist in the database");
  EXPECT_NE(errors[1].find("public.records: tenant column tenant_id has type text, which cannot "
                           "hold uuid"),
            std::string::npos)
      << errors[1];
  EXPECT_NE(errors[2].find("public.records: user column owner_id does not exist"),
            std::string::npos);
  EXPECT_NE(errors[3].find("public.users: tenant column tenant_id has type text"),
            std::string::npos);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0],
            "table public.countries is not in the policy: refused (default_action = deny)");
}

TEST(SchemaTest, TypeFamilies) {
  EXPECT_TRUE(column_type_fits("varchar", policy::ValueType::kText));
  EXPECT_FALSE(column_type_fits("bpchar", policy::ValueType::kText));
  EXPECT_TRUE(column_type_fits("int4", policy::ValueType::kInt));
  EXPECT_FALSE(column_type_fits("text", policy::ValueType::kInt));
  EXPECT_TRUE(column_type_fits("uuid", policy::ValueType::kUuid));
}

}  // namespace
}  // namespace tenantgate::ops
