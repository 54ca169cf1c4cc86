// Statements whose only changes are scoped-table wraps keep the client's own
// text around the wraps (rewrite_template.h); everything else is deparsed.
// Either way the output parses into exactly the walker's tree.
#include <gtest/gtest.h>

#include <string>

#include "tests/rewriter/equivalence.h"
#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::golden_policy;
using testing::identity;

std::string rewritten(const std::string& sql) {
  const RewriteResult r = testing::rewrite(sql, identity("acme"), *golden_policy());
  if (!r.is_ok()) return "ERROR " + r.refusal().sqlstate + " " + r.refusal().message;
  return r.value().sql;
}

const std::string kUsers = "(SELECT * FROM public.users WHERE users.tenant_id = 'acme')";
const std::string kRecords =
    "(SELECT * FROM public.records WHERE records.tenant_id = 'acme' AND records.created_by = 42)";

TEST(TextEdits, KeepTheClientsFormattingCommentsAndConstants) {
  EXPECT_EQ(rewritten("select  id /* who */\n from users u  where  u.id = 1.50 -- end"),
            "select  id /* who */\n from " + kUsers + " u  where  u.id = 1.50 -- end");
  EXPECT_EQ(rewritten("SELECT * FROM users WHERE name = E'a\\nb' AND email = $$x$$"),
            "SELECT * FROM " + kUsers + " users WHERE name = E'a\\nb' AND email = $$x$$");
}

TEST(TextEdits, NamesAliasesAndJoins) {
  EXPECT_EQ(rewritten("SELECT * FROM public.users"), "SELECT * FROM " + kUsers + " users");
  EXPECT_EQ(rewritten("SELECT * FROM public . users AS u"), "SELECT * FROM " + kUsers + " AS u");
  EXPECT_EQ(rewritten("SELECT * FROM \"users\" u(a, b)"), "SELECT * FROM " + kUsers + " u(a, b)");
  EXPECT_EQ(rewritten("SELECT u.id FROM users u JOIN records r ON r.created_by = u.id"),
            "SELECT u.id FROM " + kUsers + " u JOIN " + kRecords + " r ON r.created_by = u.id");
  EXPECT_EQ(rewritten("SELECT (SELECT count(*) FROM records) FROM users ORDER BY "
                      "(SELECT max(created_by) FROM records)"),
            "SELECT (SELECT count(*) FROM " + kRecords + " records) FROM " + kUsers +
                " users ORDER BY (SELECT max(created_by) FROM " + kRecords + " records)");
  EXPECT_EQ(rewritten("WITH users AS (SELECT 1 AS id) SELECT * FROM users"),
            "WITH users AS (SELECT 1 AS id) SELECT * FROM users");
  EXPECT_EQ(rewritten("WITH x AS (SELECT * FROM users) SELECT * FROM x"),
            "WITH x AS (SELECT * FROM " + kUsers + " users) SELECT * FROM x");
}

TEST(TextEdits, MultiStatementStringsEditEachStatement) {
  EXPECT_EQ(rewritten("SELECT 1 ;select * from users;  SELECT * FROM countries"),
            "SELECT 1 ;select * from " + kUsers + " users;  SELECT * FROM countries");
}

TEST(TextEdits, OtherChangesAreDeparsed) {
  // ONLY t cannot be edited in place; a write adds predicates: both deparse
  // (the keywords come back upper-case).
  EXPECT_EQ(rewritten("select * from only users"),
            "SELECT * FROM (SELECT * FROM ONLY public.users WHERE users.tenant_id = 'acme') users");
  EXPECT_EQ(rewritten("delete from users where id = 1"),
            "DELETE FROM public.users WHERE id = 1 AND users.tenant_id = 'acme'");
  EXPECT_EQ(rewritten("update users set name = 'x' where id = 1").rfind("UPDATE public.users", 0),
            0u);
}

TEST(TextEdits, EditedAndDeparsedOutputsMeanTheSame) {
  const char* const statements[] = {
      "select u.email from users u where u.id = 1 order by 1 limit 5",
      "SELECT * FROM app.\"MixedCase\" m, app.items",
      "SELECT * FROM users FOR UPDATE",
      "SELECT * FROM users u1, users u2 WHERE u1.id < u2.id",
      "SELECT * FROM records WHERE amount > 100 UNION SELECT * FROM records WHERE id = 1",
      "SELECT * FROM notes n LEFT JOIN LATERAL (SELECT * FROM records r WHERE r.id = n.id) x ON "
      "true",
      "SELECT (SELECT max(amount) FROM records WHERE created_by = users.id) FROM users",
  };
  Options deparse_all;
  deparse_all.edit_client_text = false;
  for (const char* sql : statements) {
    const RewriteResult edited = testing::rewrite(sql, identity("acme"), *golden_policy());
    const RewriteResult deparsed =
        testing::rewrite(sql, identity("acme"), *golden_policy(), deparse_all);
    ASSERT_TRUE(edited.is_ok()) << sql << ": " << edited.refusal().message;
    ASSERT_TRUE(deparsed.is_ok()) << sql << ": " << deparsed.refusal().message;
    EXPECT_TRUE(edited.value().changed) << sql;
    std::string difference;
    run_with_large_stack([&] { difference = testing::difference(edited, deparsed); });
    EXPECT_EQ(difference, "") << sql;
  }
}

}  // namespace
}  // namespace tenantgate::rewriter
