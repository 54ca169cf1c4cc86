// The function rules with an app catalog snapshot: app functions, operators
// and types the application defined, named or not by the policy.
#include <gtest/gtest.h>

#include "policy/app_catalog.h"
#include "rewriter/rewrite_cache.h"
#include "test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::identity;
using testing::rewrite;

std::shared_ptr<const policy::AppCatalog> app_catalog() {
  auto c = std::make_shared<policy::AppCatalog>();
  c->functions = {{"public", "records_of"}, {"public", "slugify"},   {"public", "lower"},
                  {"public", "full_name"},  {"public", "vec_add"},   {"public", "vec_in"},
                  {"app", "cast_vec"},      {"public", "secret_cmp"}};
  c->operators["==="] = {{"public", "vec_add"}};
  c->operators["="] = {{"public", "secret_cmp"}};
  c->types["vec"] = {{"public", "vec_in"}, {"app", "cast_vec"}};
  c->seal();
  return c;
}

std::shared_ptr<const policy::Policy> policy_naming(const std::string& extra,
                                                    const std::string& mode = "") {
  return policy::parse_policy(
      "search_path = [\"public\"]\n"
      "[tables.\"public.users\"]\nscope = \"tenant\"\n"
      "[functions]\n" +
          mode + "\n" + extra,
      "f.toml");
}

struct Outcome {
  bool ok;
  std::string message;
};

Outcome run(const std::string& sql, const policy::Policy& p,
            std::shared_ptr<const policy::AppCatalog> catalog = app_catalog()) {
  policy::Identity id = identity("acme");
  id.catalog = std::move(catalog);
  RewriteResult r = rewrite(sql, id, p);
  if (r.is_ok()) return {true, ""};
  EXPECT_EQ(r.refusal().sqlstate, "42501") << sql << ": " << r.refusal().message;
  return {false, r.refusal().message};
}

TEST(FunctionRulesTest, AppFunctionsInOrdinaryNotationNeedANamingPolicy) {
  auto none = policy_naming("");
  EXPECT_FALSE(run("SELECT records_of('globex')", *none).ok);
  EXPECT_FALSE(run("SELECT * FROM public.records_of('globex')", *none).ok);
  EXPECT_FALSE(run("SELECT * FROM ROWS FROM (records_of('globex')) t", *none).ok);
  auto named = policy_naming("[functions.\"public.records_of\"]\nreads = \"rls\"\n");
  EXPECT_TRUE(run("SELECT records_of('globex')", *named).ok);
  EXPECT_TRUE(run("SELECT * FROM public.records_of('globex')", *named).ok);
  EXPECT_FALSE(run("SELECT slugify('x')", *named).ok);
}

TEST(FunctionRulesTest, AttributeNotationOfAnAppFunction) {
  auto none = policy_naming("");
  Outcome o = run("SELECT ('globex'::text).records_of", *none);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("public.records_of"), std::string::npos) << o.message;
  EXPECT_FALSE(run("SELECT u.full_name FROM users u", *none).ok);
  EXPECT_FALSE(run("SELECT (u).full_name FROM users u", *none).ok);
  // Not an app function, not a built-in: a column.
  EXPECT_TRUE(run("SELECT u.email FROM users u", *none).ok);
  auto named = policy_naming("[functions.\"public.full_name\"]\nreads = \"none\"\n");
  EXPECT_TRUE(run("SELECT u.full_name FROM users u", *named).ok);
  EXPECT_FALSE(run("SELECT ('globex'::text).records_of", *named).ok);
}

TEST(FunctionRulesTest, AnAppFunctionShadowingABuiltin) {
  // public.lower may be a better match than pg_catalog.lower for some
  // argument types (namespace.c FuncnameGetCandidates sees both).
  auto none = policy_naming("");
  EXPECT_FALSE(run("SELECT lower('x')", *none).ok);
  EXPECT_FALSE(run("SELECT ('x'::text).lower", *none).ok);
  EXPECT_TRUE(run("SELECT pg_catalog.lower('x')", *none).ok);
  EXPECT_TRUE(run("SELECT upper('x')", *none).ok);
  auto named = policy_naming("[functions.\"public.lower\"]\nreads = \"none\"\n");
  EXPECT_TRUE(run("SELECT lower('x')", *named).ok);
}

TEST(FunctionRulesTest, OperatorsImplementedByAppFunctions) {
  auto none = policy_naming("");
  Outcome o = run("SELECT 1 === 2", *none);
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.message.find("public.vec_add"), std::string::npos) << o.message;
  EXPECT_FALSE(run("SELECT 1 FROM users WHERE id = 1", *none).ok);  // = has an app overload
  EXPECT_FALSE(run("SELECT 1 WHERE 1 IN (1, 2)", *none).ok);        // IN applies =
  EXPECT_FALSE(run("SELECT NULLIF(1, 2)", *none).ok);
  EXPECT_FALSE(run("SELECT 1 WHERE 1 = ANY (ARRAY[1])", *none).ok);
  EXPECT_FALSE(run("SELECT CASE 1 WHEN 1 THEN 'a' END", *none).ok);  // CASE x WHEN: =
  EXPECT_FALSE(run("SELECT 1 WHERE 1 IN (SELECT 1)", *none).ok);     // IN (subquery): =
  EXPECT_FALSE(run("SELECT 1 WHERE 1 = ANY (SELECT 1)", *none).ok);
  EXPECT_FALSE(run("SELECT 1 WHERE 1 === ALL (SELECT 1)", *none).ok);
  EXPECT_TRUE(run("SELECT 1 WHERE 1 < ANY (SELECT 1)", *none).ok);
  EXPECT_TRUE(run("SELECT CASE WHEN true THEN 'a' END", *none).ok);
  EXPECT_TRUE(run("SELECT 1 OPERATOR(pg_catalog.=) 1", *none).ok);
  EXPECT_TRUE(run("SELECT 1 < 2", *none).ok);
  auto named = policy_naming(
      "[functions.\"public.vec_add\"]\nreads = \"none\"\n"
      "[functions.\"public.secret_cmp\"]\nreads = \"none\"\n");
  EXPECT_TRUE(run("SELECT 1 === 2", *named).ok);
  EXPECT_TRUE(run("SELECT 1 WHERE 1 IN (1, 2)", *named).ok);
}

TEST(FunctionRulesTest, CastsAndLiteralsOfAppTypes) {
  auto none = policy_naming("");
  EXPECT_FALSE(run("SELECT '1,2'::vec", *none).ok);
  EXPECT_FALSE(run("SELECT vec '1,2'", *none).ok);
  EXPECT_FALSE(run("SELECT CAST('1,2' AS public.vec)", *none).ok);
  EXPECT_FALSE(run("SELECT '{}'::vec[]", *none).ok);
  EXPECT_FALSE(run("SELECT vec('1,2')", *none).ok);  // function-style cast
  EXPECT_TRUE(run("SELECT '1'::int", *none).ok);
  auto one = policy_naming("[functions.\"public.vec_in\"]\nreads = \"none\"\n");
  EXPECT_FALSE(run("SELECT '1,2'::vec", *one).ok);  // the cast function too
  auto both = policy_naming(
      "[functions.\"public.vec_in\"]\nreads = \"none\"\n"
      "[functions.\"app.cast_vec\"]\nreads = \"none\"\n");
  EXPECT_TRUE(run("SELECT '1,2'::vec", *both).ok);
  EXPECT_TRUE(run("SELECT vec('1,2')", *both).ok);
}

TEST(FunctionRulesTest, TablesampleMethods) {
  auto none = policy_naming("");
  EXPECT_TRUE(run("SELECT * FROM pg_class TABLESAMPLE system (1)", *none).ok);
  EXPECT_FALSE(run("SELECT * FROM pg_class TABLESAMPLE system_rows (1)", *none).ok);
  auto named = policy_naming("[functions.\"public.system_rows\"]\nreads = \"none\"\n");
  EXPECT_TRUE(run("SELECT * FROM pg_class TABLESAMPLE system_rows (1)", *named).ok);
}

TEST(FunctionRulesTest, DenyListModeRunsAppFunctionsButNotDeniedBuiltins) {
  auto p = policy_naming("", "mode = \"deny_list\"");
  EXPECT_TRUE(run("SELECT records_of('globex')", *p).ok);
  EXPECT_TRUE(run("SELECT ('globex'::text).records_of", *p).ok);
  EXPECT_TRUE(run("SELECT 1 === 2", *p).ok);
  EXPECT_FALSE(run("SELECT ('/etc/hostname'::text).pg_read_file", *p).ok);
  EXPECT_FALSE(run("SELECT ts_stat('select 1')", *p).ok);
}

TEST(FunctionRulesTest, NoCatalogMeansNoAppFunctions) {
  auto none = policy_naming("");
  EXPECT_TRUE(run("SELECT u.full_name FROM users u", *none, nullptr).ok);
  EXPECT_FALSE(run("SELECT full_name(u) FROM users u", *none, nullptr).ok);
  EXPECT_FALSE(run("SELECT ('/etc/hostname'::text).pg_read_file", *none, nullptr).ok);
}

TEST(FunctionRulesTest, TheCatalogIsPartOfTheCacheKey) {
  auto none = policy_naming("");
  RewriteCache cache(1 << 20);
  const Rewriter rewriter(Options{});
  policy::Identity without = identity("acme");
  policy::Identity with = identity("acme");
  with.catalog = app_catalog();
  const std::string sql = "SELECT u.full_name FROM users u WHERE u.id = 7";
  std::optional<RewriteResult> a, b;
  run_with_large_stack([&] {
    a = cache.rewrite(rewriter, sql, without, none);
    b = cache.rewrite(rewriter, sql, with, none);
  });
  EXPECT_TRUE(a->is_ok());
  EXPECT_FALSE(b->is_ok());
  // Equal content, equal id.
  EXPECT_EQ(app_catalog()->id, with.catalog->id);
  policy::AppCatalog other;
  other.functions = {{"public", "x"}};
  other.seal();
  EXPECT_NE(other.id, with.catalog->id);
}

}  // namespace
}  // namespace tenantgate::rewriter
