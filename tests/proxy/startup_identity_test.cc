#include "proxy/startup_identity.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::proxy {
namespace {

constexpr std::string_view kTenant = "tenantgate.tenant";
constexpr std::string_view kUser = "tenantgate.user";

StartupIdentity ok(const StartupParams& params, std::string_view tenant = kTenant,
                   std::string_view user = kUser) {
  auto r = extract_startup_identity(params, tenant, user);
  if (auto* e = std::get_if<StartupIdentityError>(&r)) {
    ADD_FAILURE() << "unexpected error: " << e->message;
    return {};
  }
  return std::get<StartupIdentity>(std::move(r));
}

std::string error(const StartupParams& params) {
  auto r = extract_startup_identity(params, kTenant, kUser);
  if (auto* e = std::get_if<StartupIdentityError>(&r)) return e->message;
  ADD_FAILURE() << "expected an error";
  return {};
}

TEST(StartupIdentity, OwnParameters) {
  const auto id = ok({{"user", "app"},
                      {"tenantgate.tenant", "acme"},
                      {"database", "db"},
                      {"tenantgate.user", "42"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.user, "42");
  EXPECT_EQ(id.forwarded, (StartupParams{{"user", "app"}, {"database", "db"}}));
}

TEST(StartupIdentity, NothingGiven) {
  const StartupParams params = {{"user", "app"}, {"options", "-c search_path=x"}};
  const auto id = ok(params);
  EXPECT_FALSE(id.tenant);
  EXPECT_FALSE(id.user);
  EXPECT_EQ(id.forwarded, params);  // untouched, byte for byte
}

TEST(StartupIdentity, DashCSeparated) {
  const auto id =
      ok({{"user", "app"}, {"options", "-c tenantgate.tenant=acme -c tenantgate.user=42"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.user, "42");
  EXPECT_EQ(id.forwarded, (StartupParams{{"user", "app"}}));  // empty options dropped
}

TEST(StartupIdentity, DashCAttachedAndDoubleDash) {
  const auto id =
      ok({{"user", "app"}, {"options", "-ctenantgate.tenant=acme --tenantgate.user=42"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.user, "42");
  EXPECT_EQ(id.forwarded.size(), 1u);
}

TEST(StartupIdentity, OtherOptionsAreKeptAndReencoded) {
  const auto id =
      ok({{"user", "app"},
          {"options", "  -c search_path=a\\ b  -c tenantgate.tenant=acme\t-c x=\\\\y  "},
          {"database", "db"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.forwarded, (StartupParams{{"user", "app"},
                                         {"options", "-c search_path=a\\ b -c x=\\\\y"},
                                         {"database", "db"}}));
}

TEST(StartupIdentity, BackslashEscapesInTheValue) {
  EXPECT_EQ(ok({{"options", "-c tenantgate.tenant=a\\ b\\\\c\\d"}}).tenant, "a b\\cd");
}

TEST(StartupIdentity, TrailingLoneBackslashIsRefused) {
  EXPECT_EQ(error({{"options", "-c tenantgate.tenant=acme\\"}}),
            "\"options\" ends with a lone backslash");
}

TEST(StartupIdentity, NamesFoldCaseAndDashesLikePostgres) {
  // GUC names are case-insensitive; ParseLongOption turns '-' into '_' in names
  // given through options (not in start-up parameters themselves).
  EXPECT_EQ(ok({{"options", "-c TenantGate.Tenant=acme"}}).tenant, "acme");
  EXPECT_EQ(ok({{"TENANTGATE.TENANT", "acme"}}).tenant, "acme");
  const auto id =
      ok({{"options", "--app.tenant-id=7 -c app.user-id=9"}}, "app.tenant_id", "app.user_id");
  EXPECT_EQ(id.tenant, "7");
  EXPECT_EQ(id.user, "9");
  // As its own parameter the dash is not converted, so it is a different name.
  EXPECT_FALSE(ok({{"app.tenant-id", "7"}}, "app.tenant_id", "app.user_id").tenant);
}

TEST(StartupIdentity, SameValueTwiceIsFine) {
  const auto id = ok({{"tenantgate.tenant", "acme"},
                      {"options", "-c tenantgate.tenant=acme --tenantgate.tenant=acme"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_TRUE(id.forwarded.empty());
}

TEST(StartupIdentity, DifferentValuesAreRefused) {
  EXPECT_EQ(error({{"tenantgate.tenant", "acme"}, {"options", "-c tenantgate.tenant=evil"}}),
            "tenantgate.tenant given twice with different values");
  EXPECT_EQ(error({{"options", "-c tenantgate.user=1 -ctenantgate.user=2"}}),
            "tenantgate.user given twice with different values");
  EXPECT_EQ(error({{"tenantgate.tenant", "a"}, {"TenantGate.Tenant", "b"}}),
            "tenantgate.tenant given twice with different values");
}

TEST(StartupIdentity, SettingWithoutValueIsRefused) {
  EXPECT_EQ(error({{"options", "-c tenantgate.tenant"}}),
            "tenantgate.tenant in \"options\" has no value");
}

TEST(StartupIdentity, EmptyValueIsReturnedForTheCallerToValidate) {
  EXPECT_EQ(ok({{"options", "-c tenantgate.tenant="}}).tenant, "");
}

TEST(StartupIdentity, SwitchClustersAreReadAsTheBackendReadsThem) {
  // "-ec x": -e is a flag, then -c takes the next word.
  auto id = ok({{"options", "-ec tenantgate.tenant=acme"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.forwarded, (StartupParams{{"options", "-e"}}));
  // "-B c": -B takes an argument, so "c" is not -c and what follows is not a setting of it.
  id = ok({{"options", "-B c tenantgate.tenant=acme"}});
  EXPECT_FALSE(id.tenant);
  // "-Bc": the same, attached.
  id = ok({{"options", "-Bc -c tenantgate.tenant=acme"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.forwarded, (StartupParams{{"options", "-Bc"}}));
}

TEST(StartupIdentity, AfterDoubleDashNothingIsASwitch) {
  const auto id = ok({{"options", "-- -c tenantgate.tenant=acme"}});
  EXPECT_FALSE(id.tenant);
}

TEST(StartupIdentity, DanglingDashCIsLeftForTheBackend) {
  const auto id = ok({{"options", "-c tenantgate.tenant=acme -c"}});
  EXPECT_EQ(id.tenant, "acme");
  EXPECT_EQ(id.forwarded, (StartupParams{{"options", "-c"}}));
}

TEST(StartupIdentity, ForwardedOptionsRoundTrip) {
  // Extracting again from what is forwarded finds no identity and changes nothing.
  const auto first = ok({{"options", "-c a=\\ x\\\\ -c tenantgate.tenant=t -c b=y\\ \\ z"}});
  const auto second = ok(first.forwarded);
  EXPECT_FALSE(second.tenant);
  EXPECT_EQ(second.forwarded, first.forwarded);
  EXPECT_EQ(first.forwarded[0].second, "-c a=\\ x\\\\ -c b=y\\ \\ z");
}

}  // namespace
}  // namespace tenantgate::proxy

namespace tenantgate::proxy {
namespace {

TEST(StartupIdentity, TokenAsParameterOrInOptions) {
  auto own = extract_startup_identity({{"user", "app"}, {"TenantGate.Token", "h.p.s"}},
                                      "tenantgate.tenant", "tenantgate.user");
  ASSERT_TRUE(std::holds_alternative<StartupIdentity>(own));
  EXPECT_EQ(std::get<StartupIdentity>(own).token, "h.p.s");
  EXPECT_EQ(std::get<StartupIdentity>(own).forwarded, (StartupParams{{"user", "app"}}));

  auto opts = extract_startup_identity(
      {{"user", "app"}, {"options", "-c search_path=x -c tenantgate.token=h.p.s"}},
      "tenantgate.tenant", "tenantgate.user");
  ASSERT_TRUE(std::holds_alternative<StartupIdentity>(opts));
  const auto& id = std::get<StartupIdentity>(opts);
  EXPECT_EQ(id.token, "h.p.s");
  EXPECT_FALSE(id.tenant);
  EXPECT_EQ(id.forwarded, (StartupParams{{"user", "app"}, {"options", "-c search_path=x"}}));

  auto twice = extract_startup_identity(
      {{"tenantgate.token", "a.b.c"}, {"options", "-c tenantgate.token=x.y.z"}},
      "tenantgate.tenant", "tenantgate.user");
  ASSERT_TRUE(std::holds_alternative<StartupIdentityError>(twice));
  EXPECT_EQ(std::get<StartupIdentityError>(twice).message,
            "tenantgate.token given twice with different values");
}

}  // namespace
}  // namespace tenantgate::proxy
