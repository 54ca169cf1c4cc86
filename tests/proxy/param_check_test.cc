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

std::vector<rewriter::ParamCheck> tenant_is(int n) {
  return {
      rewriter::ParamCheck{n, rewriter::IdentityField::kTenant, "public.records", "tenant_id", ""}};
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

TEST(ParamCheckTest, BinaryIntegersOfEveryWidth) {
  auto id = identity(policy::ValueType::kInt, "-2");
  const std::string i2("\xff\xfe", 2);
  const std::string i4("\xff\xff\xff\xfe", 4);
  const std::string i8("\xff\xff\xff\xff\xff\xff\xff\xfe", 8);
  for (const auto& raw : {i2, i4, i8}) {
    EXPECT_FALSE(check_bind_params(bind_with({raw}, {1}), tenant_is(1), id)) << raw.size();
  }
  const std::string three("\x00\x00\x02", 3);
  EXPECT_TRUE(check_bind_params(bind_with({three}, {1}), tenant_is(1), id));
  const std::string other("\x00\x00\x00\x02", 4);
  EXPECT_TRUE(check_bind_params(bind_with({other}, {1}), tenant_is(1), id));
}

TEST(ParamCheckTest, PerParameterFormatsAndBinaryUuid) {
  auto id = identity(policy::ValueType::kUuid, "0123abcd-0000-4000-8000-00000000beef");
  const std::string raw("\x01\x23\xab\xcd\x00\x00\x40\x00\x80\x00\x00\x00\x00\x00\xbe\xef", 16);
  EXPECT_FALSE(check_bind_params(bind_with({"text", raw}, {0, 1}), tenant_is(2), id));
  EXPECT_FALSE(check_bind_params(bind_with({"0123ABCD-0000-4000-8000-00000000BEEF"}, {0}),
                                 tenant_is(1), id));
  std::string wrong = raw;
  wrong[15] = 0;
  EXPECT_TRUE(check_bind_params(bind_with({"text", wrong}, {0, 1}), tenant_is(2), id));
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

}  // namespace
}  // namespace tenantgate::proxy
