#include "proxy/statement_tracker.h"

#include <gtest/gtest.h>

namespace tenantgate::proxy {
namespace {

using Kind = rewriter::PreparedName::Kind;
using Names = StatementTracker::Names;

StatementTracker::Checks tenant_check(int n = 2) {
  return {rewriter::ParamCheck{n, rewriter::IdentityField::kTenant, "public.users", "tenant_id", "",
                               25}};
}

Names uses(Kind kind, std::string name) { return {rewriter::PreparedName{kind, std::move(name)}}; }
Names execute(std::string name) { return uses(Kind::kExecute, std::move(name)); }

// Parse + Sync answered by ParseComplete + ReadyForQuery.
void parse_confirmed(StatementTracker& t, std::string_view name, StatementTracker::Checks checks,
                     const Names& names = {}) {
  ASSERT_TRUE(t.parse_sent(name, std::move(checks), names));
  ASSERT_TRUE(t.sync_sent());
  ASSERT_TRUE(t.on_backend_ack('1'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
}

void query_done(StatementTracker& t, const Names& names) {
  ASSERT_FALSE(t.refuse_query(names));
  ASSERT_TRUE(t.query_sent(names));
  ASSERT_TRUE(t.on_backend_ack('Z'));
}

TEST(StatementTrackerTest, NamesPostgreSQLWouldTruncateAreRefused) {
  EXPECT_FALSE(StatementTracker::refuse_name(std::string(63, 'a')).has_value());
  EXPECT_TRUE(StatementTracker::refuse_name(std::string(64, 'a')).has_value());
  StatementTracker t;
  EXPECT_TRUE(t.refuse_parse(std::string(63, 'a') + "Z", {}, {}).has_value());
}

TEST(StatementTrackerTest, UnknownNamesCannotBeExecuted) {
  StatementTracker t;
  EXPECT_TRUE(t.refuse_query(execute("p")));
  EXPECT_TRUE(t.refuse_parse("", {}, execute("p")));
}

TEST(StatementTrackerTest, CheckedStatementCannotBeExecutedConfirmedOrPending) {
  StatementTracker t;
  ASSERT_TRUE(t.parse_sent("ins", tenant_check(), {}));
  ASSERT_TRUE(t.sync_sent());
  // Pending (ParseComplete not back yet).
  auto why = t.refuse_query(execute("ins"));
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("tenant_id"), std::string::npos) << *why;
  EXPECT_TRUE(t.refuse_parse("", {}, execute("ins")));
  ASSERT_TRUE(t.on_backend_ack('1'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  // Confirmed.
  EXPECT_TRUE(t.refuse_query(execute("ins")));
  EXPECT_EQ(t.checks_for("ins").size(), 1u);
}

TEST(StatementTrackerTest, CheckedParseThatFailedStillCountsUntilReadyForQuery) {
  StatementTracker t;
  ASSERT_TRUE(t.parse_sent("s", {}, {}));
  ASSERT_TRUE(t.sync_sent());
  ASSERT_TRUE(t.parse_sent("s", tenant_check(), {}));  // fails on the backend: duplicate
  ASSERT_TRUE(t.sync_sent());
  EXPECT_TRUE(t.refuse_query(execute("s")));  // either may be what the backend holds
  ASSERT_TRUE(t.on_backend_ack('1'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  EXPECT_TRUE(t.refuse_query(execute("s")));
  ASSERT_TRUE(t.on_backend_ack('Z'));  // the second Parse was skipped
  EXPECT_FALSE(t.refuse_query(execute("s")));
}

TEST(StatementTrackerTest, CheckLessStatementsMayBeExecuted) {
  StatementTracker t;
  parse_confirmed(t, "sel", {});
  EXPECT_FALSE(t.refuse_query(execute("sel")));
  EXPECT_FALSE(t.refuse_parse("", {}, execute("sel")));
  query_done(t, uses(Kind::kPrepare, "q"));
  EXPECT_FALSE(t.refuse_query(execute("q")));
}

TEST(StatementTrackerTest, NamesInOneQueryStringAreTakenInOrder) {
  StatementTracker t;
  EXPECT_FALSE(t.refuse_query({{Kind::kPrepare, "p"}, {Kind::kExecute, "p"}}));
  EXPECT_TRUE(t.refuse_query({{Kind::kExecute, "p"}, {Kind::kPrepare, "p"}}));
  query_done(t, uses(Kind::kPrepare, "p"));
  EXPECT_TRUE(t.refuse_query({{Kind::kDeallocate, "p"}, {Kind::kExecute, "p"}}));
  EXPECT_TRUE(t.refuse_query({{Kind::kDeallocateAll, ""}, {Kind::kExecute, "p"}}));
  EXPECT_FALSE(
      t.refuse_query({{Kind::kDeallocateAll, ""}, {Kind::kPrepare, "p"}, {Kind::kExecute, "p"}}));
  // A refused query string changes nothing.
  EXPECT_FALSE(t.refuse_query(execute("p")));
}

TEST(StatementTrackerTest, DeallocateDiscardAndCloseForgetNames) {
  StatementTracker t;
  query_done(t, {{Kind::kPrepare, "a"}, {Kind::kPrepare, "b"}});
  parse_confirmed(t, "c", {});
  query_done(t, uses(Kind::kDeallocate, "a"));
  EXPECT_TRUE(t.refuse_query(execute("a")));
  EXPECT_FALSE(t.refuse_query(execute("b")));
  ASSERT_TRUE(t.close_sent('S', "c"));
  EXPECT_TRUE(t.refuse_query(execute("c")));
  ASSERT_TRUE(t.close_sent('P', "b"));  // a portal: the statement stays
  ASSERT_TRUE(t.sync_sent());
  ASSERT_TRUE(t.on_backend_ack('3'));
  ASSERT_TRUE(t.on_backend_ack('3'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  EXPECT_FALSE(t.refuse_query(execute("b")));
  query_done(t, uses(Kind::kDeallocateAll, ""));
  EXPECT_TRUE(t.refuse_query(execute("b")));
}

TEST(StatementTrackerTest, DeallocateKeepsChecksUntilTheBackendConfirmsAReplacement) {
  // DEALLOCATE may fail (inside an aborted transaction): the checks stay for
  // Bind, and the name cannot be EXECUTEd.
  StatementTracker t;
  parse_confirmed(t, "ins", tenant_check());
  query_done(t, uses(Kind::kDeallocate, "ins"));
  EXPECT_EQ(t.checks_for("ins").size(), 1u);
  // A SQL PREPARE of the name cannot clear them either (it fails while the
  // checked statement exists).
  query_done(t, uses(Kind::kPrepare, "ins"));
  EXPECT_TRUE(t.refuse_query(execute("ins")));
  EXPECT_EQ(t.checks_for("ins").size(), 1u);
  // A checkless Parse the backend confirmed replaces them.
  parse_confirmed(t, "ins", {});
  EXPECT_TRUE(t.checks_for("ins").empty());
  EXPECT_FALSE(t.refuse_query(execute("ins")));
}

TEST(StatementTrackerTest, CloseCompleteDropsChecks) {
  StatementTracker t;
  parse_confirmed(t, "ins", tenant_check());
  ASSERT_TRUE(t.close_sent('S', "ins"));
  EXPECT_TRUE(t.checks_for("ins").empty());  // closed in this batch: the Bind fails
  ASSERT_TRUE(t.sync_sent());
  EXPECT_EQ(t.checks_for("ins").size(), 1u);  // not known yet whether the Close ran
  ASSERT_TRUE(t.on_backend_ack('3'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  EXPECT_TRUE(t.checks_for("ins").empty());
  EXPECT_TRUE(t.refuse_query(execute("ins")));  // closed: unknown
}

TEST(StatementTrackerTest, ANameRunByAParsedExecuteNeverGetsChecks) {
  // The portal of Parse("e", "EXECUTE p") runs p when it is executed, which
  // may be after p was closed and Parsed again.
  StatementTracker t;
  parse_confirmed(t, "p", {});
  ASSERT_FALSE(t.refuse_parse("e", {}, execute("p")));
  ASSERT_TRUE(t.parse_sent("e", {}, execute("p")));
  ASSERT_TRUE(t.close_sent('S', "p"));
  auto why = t.refuse_parse("p", tenant_check(), {});
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("EXECUTE"), std::string::npos);
  EXPECT_FALSE(t.refuse_parse("p", {}, {}));
  EXPECT_FALSE(t.refuse_parse("other", tenant_check(), {}));
  // An EXECUTE in a simple Query runs at once: it marks nothing.
  query_done(t, {{Kind::kPrepare, "q"}, {Kind::kExecute, "q"}});
  EXPECT_FALSE(t.refuse_parse("q", tenant_check(), {}));
}

TEST(StatementTrackerTest, BindChecksFollowTheNewestParseInTheBatch) {
  StatementTracker t;
  parse_confirmed(t, "", tenant_check(2));
  ASSERT_TRUE(t.parse_sent("", {}, {}));
  EXPECT_TRUE(t.checks_for("").empty());  // in this batch the new Parse decides
  ASSERT_TRUE(t.sync_sent());
  // Across the unanswered Sync both candidates count.
  EXPECT_EQ(t.checks_for("").size(), 1u);
  ASSERT_TRUE(t.on_backend_ack('1'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  EXPECT_TRUE(t.checks_for("").empty());
}

TEST(StatementTrackerTest, RefusalsAreTakenOnceAndDroppedAtReadyForQuery) {
  StatementTracker t;
  auto first = t.refusal_sent({"42501", "no"});
  ASSERT_TRUE(first);
  ASSERT_TRUE(t.sync_sent());
  auto second = t.refusal_sent({"42501", "skipped"});
  ASSERT_TRUE(second);
  ASSERT_TRUE(t.sync_sent());
  EXPECT_TRUE(t.has_refusals());
  auto taken = t.take_refusal(*first);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->message, "no");
  EXPECT_FALSE(t.take_refusal(*first));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  ASSERT_TRUE(t.on_backend_ack('Z'));
  EXPECT_FALSE(t.take_refusal(*second));
  EXPECT_FALSE(t.has_refusals());
  const uint64_t copy = t.copy_fail_sent({"42501", "row"});
  ASSERT_TRUE(t.on_backend_ack('Z'));  // not tied to a Sync: taken when its error comes
  EXPECT_TRUE(t.take_refusal(copy));
}

TEST(StatementTrackerTest, UnexpectedConfirmationsAreReported) {
  StatementTracker t;
  EXPECT_FALSE(t.on_backend_ack('1'));
  EXPECT_FALSE(t.on_backend_ack('3'));
  ASSERT_TRUE(t.parse_sent("a", {}, {}));
  EXPECT_FALSE(t.on_backend_ack('3'));
  StatementTracker u;
  ASSERT_TRUE(u.close_sent('S', "a"));
  EXPECT_FALSE(u.on_backend_ack('1'));
  // A substituted message never answers ParseComplete: it is skipped over.
  StatementTracker v;
  ASSERT_TRUE(v.refusal_sent({"42501", "x"}));
  ASSERT_TRUE(v.sync_sent());
  ASSERT_TRUE(v.parse_sent("b", {}, {}));
  EXPECT_FALSE(v.on_backend_ack('1'));  // the Sync is in the way
}

TEST(StatementTrackerTest, BoundsOnWhatAClientCanMakeItRemember) {
  StatementTracker t;
  EXPECT_FALSE(t.parse_sent(std::string(StatementTracker::kMaxStatementName + 1, 'x'), {}, {}));
  for (std::size_t i = 0; i < StatementTracker::kMaxPendingOps; ++i) {
    ASSERT_TRUE(t.close_sent('P', "c"));
  }
  EXPECT_FALSE(t.sync_sent());
  EXPECT_FALSE(t.refusal_sent({"42501", "x"}));
}

}  // namespace
}  // namespace tenantgate::proxy
