#include "proxy/param_check.h"

#include <gtest/gtest.h>

namespace tenantgate::proxy {
namespace {

policy::Identity identity(policy::ValueType tenant_type, std::string tenant) {
  policy::Identity id;
  id.tenant = {std::move(tenant), tenant_type};
  id.user = policy::TypedValue{"42", policy::ValueType::kInt};
  return id;
}

std::vector<rewriter::ParamCheck> tenant_is(int n, int32_t type_oid = 0) {
  return {rewriter::ParamCheck{n, rewriter::IdentityField::kTenant, "public.records", "tenant_id",
                               "", type_oid}};
}

BindMessage bind_with(std::vector<std::optional<std::string_view>> params,
                      std::vector<int16_t> formats = {}) {
  BindMessage b;
  b.params = std::move(params);
  b.param_formats = std::move(formats);
  return b;
}

TEST(ParamCheckTest, TextFormatIsCanonicalisedBeforeComparing) {
  auto id = identity(policy::ValueType::kInt, "7");
  EXPECT_FALSE(check_bind_params(bind_with({"x", "7"}), tenant_is(2), id));
  EXPECT_FALSE(check_bind_params(bind_with({"x", "007"}), tenant_is(2), id));
  EXPECT_TRUE(check_bind_params(bind_with({"x", "8"}), tenant_is(2), id));
  EXPECT_TRUE(check_bind_params(bind_with({"x", "7 OR 1=1"}), tenant_is(2), id));
}

TEST(ParamCheckTest, NullMissingAndOutOfRangeParametersAreRefused) {
  auto id = identity(policy::ValueType::kText, "acme");
  EXPECT_TRUE(check_bind_params(bind_with({std::nullopt}), tenant_is(1), id));
  EXPECT_TRUE(check_bind_params(bind_with({}), tenant_is(1), id));
  EXPECT_TRUE(check_bind_params(bind_with({"acme"}), tenant_is(0), id));
  EXPECT_TRUE(check_bind_params(bind_with({"acme"}), tenant_is(2), id));
  EXPECT_FALSE(check_bind_params(bind_with({"acme"}), tenant_is(1), id));
}

TEST(ParamCheckTest, BinaryIntegersHaveExactlyTheDeclaredWidth) {
  auto id = identity(policy::ValueType::kInt, "-2");
  const std::string i2("\xff\xfe", 2);
  const std::string i4("\xff\xff\xff\xfe", 4);
  const std::string i8("\xff\xff\xff\xff\xff\xff\xff\xfe", 8);
  const std::pair<std::string, int32_t> widths[] = {{i2, kInt2Oid}, {i4, kInt4Oid}, {i8, kInt8Oid}};
  for (const auto& [raw, oid] : widths) {
    EXPECT_FALSE(check_bind_params(bind_with({raw}, {1}), tenant_is(1, oid), id)) << oid;
    for (const auto& [other_raw, other_oid] : widths) {
      if (other_oid == oid) continue;
      // The server would read these bytes as another width (or refuse them).
      EXPECT_TRUE(check_bind_params(bind_with({other_raw}, {1}), tenant_is(1, oid), id))
          << oid << " " << other_raw.size();
    }
  }
  const std::string three("\x00\x00\x02", 3);
  EXPECT_TRUE(check_bind_params(bind_with({three}, {1}), tenant_is(1, kInt4Oid), id));
  const std::string other("\x00\x00\x00\x02", 4);
  EXPECT_TRUE(check_bind_params(bind_with({other}, {1}), tenant_is(1, kInt4Oid), id));
  // No declared type, or one outside the family: binary is refused.
  EXPECT_TRUE(check_bind_params(bind_with({i8}, {1}), tenant_is(1), id));
  EXPECT_TRUE(check_bind_params(bind_with({i8}, {1}), tenant_is(1, kTextOid), id));
}

TEST(ParamCheckTest, BinaryTextIsReadOnlyAsText) {
  auto id = identity(policy::ValueType::kText, "acme");
  EXPECT_FALSE(check_bind_params(bind_with({"acme"}, {1}), tenant_is(1, kTextOid), id));
  EXPECT_FALSE(check_bind_params(bind_with({"acme"}, {1}), tenant_is(1, kVarcharOid), id));
  // The bytes of "acme" are the int4 1633906021 to a server that infers int4.
  EXPECT_TRUE(check_bind_params(bind_with({"acme"}, {1}), tenant_is(1, kInt4Oid), id));
  EXPECT_TRUE(check_bind_params(bind_with({"acme"}, {1}), tenant_is(1), id));
}

TEST(ParamCheckTest, PerParameterFormatsAndBinaryUuid) {
  auto id = identity(policy::ValueType::kUuid, "0123abcd-0000-4000-8000-00000000beef");
  const std::string raw("\x01\x23\xab\xcd\x00\x00\x40\x00\x80\x00\x00\x00\x00\x00\xbe\xef", 16);
  EXPECT_FALSE(check_bind_params(bind_with({"text", raw}, {0, 1}), tenant_is(2, kUuidOid), id));
  EXPECT_FALSE(check_bind_params(bind_with({"0123ABCD-0000-4000-8000-00000000BEEF"}, {0}),
                                 tenant_is(1), id));
  std::string wrong = raw;
  wrong[15] = 0;
  EXPECT_TRUE(check_bind_params(bind_with({"text", wrong}, {0, 1}), tenant_is(2, kUuidOid), id));
}

TEST(ParamCheckTest, UserChecksNeedAUserIdentity) {
  auto id = identity(policy::ValueType::kText, "acme");
  std::vector<rewriter::ParamCheck> user_is_1 = {
      {1, rewriter::IdentityField::kUser, "public.records", "created_by", ""}};
  EXPECT_FALSE(check_bind_params(bind_with({"42"}), user_is_1, id));
  EXPECT_TRUE(check_bind_params(bind_with({"43"}), user_is_1, id));
  id.user.reset();
  EXPECT_TRUE(check_bind_params(bind_with({"42"}), user_is_1, id));
}

TEST(ParamCheckTest, UnspecifiedTypesOfCheckedParametersAreDeclared) {
  const struct {
    policy::ValueType type;
    const char* value;
    int32_t oid;
  } cases[] = {{policy::ValueType::kText, "acme", kTextOid},
               {policy::ValueType::kInt, "7", kInt8Oid},
               {policy::ValueType::kUuid, "0123abcd-0000-4000-8000-00000000beef", kUuidOid}};
  for (const auto& c : cases) {
    auto id = identity(c.type, c.value);
    // Absent: the list grows, earlier parameters stay unspecified.
    std::vector<int32_t> types;
    auto checks = tenant_is(3);
    EXPECT_FALSE(declare_checked_param_types(types, checks, id));
    EXPECT_EQ(types, (std::vector<int32_t>{0, 0, c.oid}));
    EXPECT_EQ(checks[0].type_oid, c.oid);
    // Zero: filled in place; other parameters are left alone.
    types = {23, 0, 0, 1700};
    checks = tenant_is(2);
    EXPECT_FALSE(declare_checked_param_types(types, checks, id));
    EXPECT_EQ(types, (std::vector<int32_t>{23, c.oid, 0, 1700}));
  }
}

TEST(ParamCheckTest, DeclaredTypesThatFitAreKept) {
  auto id = identity(policy::ValueType::kInt, "7");
  std::vector<int32_t> types = {kInt4Oid};
  auto checks = tenant_is(1);
  EXPECT_FALSE(declare_checked_param_types(types, checks, id));
  EXPECT_EQ(types, std::vector<int32_t>{kInt4Oid});
  EXPECT_EQ(checks[0].type_oid, kInt4Oid);
  auto text = identity(policy::ValueType::kText, "acme");
  types = {kVarcharOid};
  checks = tenant_is(1);
  EXPECT_FALSE(declare_checked_param_types(types, checks, text));
  EXPECT_EQ(checks[0].type_oid, kVarcharOid);
}

TEST(ParamCheckTest, TypesThatDoNotFitAreRefused) {
  auto id = identity(policy::ValueType::kText, "acme");
  for (int32_t oid : {kInt4Oid, kInt8Oid, kUuidOid, 1042 /* bpchar */, 18 /* "char" */,
                      3614 /* tsvector */, 701 /* float8 */}) {
    std::vector<int32_t> types = {oid};
    auto checks = tenant_is(1);
    EXPECT_TRUE(declare_checked_param_types(types, checks, id)) << oid;
  }
  // An explicit cast on the parameter that does not fit.
  std::vector<int32_t> types;
  auto checks = tenant_is(1);
  checks[0].cast = "int4";
  EXPECT_TRUE(declare_checked_param_types(types, checks, id));
  // One parameter checked against a text tenant and an int user: no type fits both.
  types.clear();
  checks = tenant_is(1);
  checks.push_back({1, rewriter::IdentityField::kUser, "public.records", "owner_id", "", 0});
  EXPECT_TRUE(declare_checked_param_types(types, checks, id));
  // Past what a Bind can carry.
  types.clear();
  checks = tenant_is(65536);
  EXPECT_TRUE(declare_checked_param_types(types, checks, id));
  checks = tenant_is(0);
  EXPECT_TRUE(declare_checked_param_types(types, checks, id));
}

TEST(ParamCheckTest, UserChecksWithoutAUserKeepNoType) {
  auto id = identity(policy::ValueType::kText, "acme");
  id.user.reset();
  std::vector<int32_t> types;
  std::vector<rewriter::ParamCheck> checks = {
      {1, rewriter::IdentityField::kUser, "public.records", "owner_id", "", 0}};
  EXPECT_FALSE(declare_checked_param_types(types, checks, id));
  EXPECT_EQ(checks[0].type_oid, 0);
  EXPECT_TRUE(check_bind_params(bind_with({"42"}), checks, id));  // refused at Bind
}

}  // namespace
}  // namespace tenantgate::proxy
