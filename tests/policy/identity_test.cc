#include "policy/identity.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::policy {
namespace {

using std::string_literals::operator""s;

std::optional<std::string> canon(ValueType t, std::string_view raw) {
  return canonical_value(t, raw);
}

TEST(ValueTypeTest, ParsesAndNames) {
  for (ValueType t : {ValueType::kText, ValueType::kInt, ValueType::kUuid}) {
    EXPECT_EQ(parse_value_type(value_type_name(t)), t);
  }
  EXPECT_EQ(parse_value_type("text"), ValueType::kText);
  EXPECT_EQ(parse_value_type("int"), ValueType::kInt);
  EXPECT_EQ(parse_value_type("uuid"), ValueType::kUuid);
  EXPECT_FALSE(parse_value_type("TEXT"));
  EXPECT_FALSE(parse_value_type("integer"));
  EXPECT_FALSE(parse_value_type(""));
}

TEST(CanonicalIntTest, Accepts) {
  EXPECT_EQ(canon(ValueType::kInt, "42"), "42");
  EXPECT_EQ(canon(ValueType::kInt, "0"), "0");
  EXPECT_EQ(canon(ValueType::kInt, "-0"), "0");
  EXPECT_EQ(canon(ValueType::kInt, "+0"), "0");
  EXPECT_EQ(canon(ValueType::kInt, "+5"), "5");
  EXPECT_EQ(canon(ValueType::kInt, "-17"), "-17");
  EXPECT_EQ(canon(ValueType::kInt, "007"), "7");
  EXPECT_EQ(canon(ValueType::kInt, "-007"), "-7");
  EXPECT_EQ(canon(ValueType::kInt, "000000000000000000000000000001"), "1");
  EXPECT_EQ(canon(ValueType::kInt, "9223372036854775807"), "9223372036854775807");
  EXPECT_EQ(canon(ValueType::kInt, "+9223372036854775807"), "9223372036854775807");
  EXPECT_EQ(canon(ValueType::kInt, "-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(canon(ValueType::kInt, "-09223372036854775808"), "-9223372036854775808");
}

TEST(CanonicalIntTest, Refuses) {
  for (std::string_view raw :
       {"", "+", "-", "--1", "+-1", "1.0", "1e3", "0x10", " 1", "1 ", "1_000", "١", "12a",
        "9223372036854775808", "-9223372036854775809", "99999999999999999999",
        "18446744073709551616", "1'; DROP TABLE x; --"}) {
    EXPECT_FALSE(canon(ValueType::kInt, raw)) << raw;
  }
  EXPECT_FALSE(canon(ValueType::kInt, "1\0"s));
}

TEST(CanonicalUuidTest, AcceptsAndLowers) {
  EXPECT_EQ(canon(ValueType::kUuid, "123e4567-e89b-12d3-a456-426614174000"),
            "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(canon(ValueType::kUuid, "123E4567-E89B-12D3-A456-4266141740FF"),
            "123e4567-e89b-12d3-a456-4266141740ff");
  EXPECT_EQ(canon(ValueType::kUuid, "00000000-0000-0000-0000-000000000000"),
            "00000000-0000-0000-0000-000000000000");
}

TEST(CanonicalUuidTest, Refuses) {
  for (std::string_view raw :
       {"", "{123e4567-e89b-12d3-a456-426614174000}",
        "urn:uuid:123e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000",
        "123e4567-e89b-12d3-a456-42661417400",    // short
        "123e4567-e89b-12d3-a456-4266141740000",  // long
        "123e4567-e89b-12d3-a456_426614174000",   // wrong separator
        "123e4567-e89b-12d3-a4567-26614174000",   // misplaced hyphen
        "g23e4567-e89b-12d3-a456-426614174000",   // not hex
        " 123e4567-e89b-12d3-a456-42661417400"}) {
    EXPECT_FALSE(canon(ValueType::kUuid, raw)) << raw;
  }
}

TEST(CanonicalTextTest, Accepts) {
  EXPECT_EQ(canon(ValueType::kText, "acme"), "acme");
  EXPECT_EQ(canon(ValueType::kText, "O'Reilly \"&\" Sons"), "O'Reilly \"&\" Sons");
  EXPECT_EQ(canon(ValueType::kText, "Zürich"), "Zürich");                      // 2-byte
  EXPECT_EQ(canon(ValueType::kText, "東京"), "東京");                          // 3-byte
  EXPECT_EQ(canon(ValueType::kText, "\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");  // 4-byte
  EXPECT_EQ(canon(ValueType::kText, "\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_EQ(canon(ValueType::kText, "tab\there\nnewline"), "tab\there\nnewline");
  EXPECT_EQ(canon(ValueType::kText, "  spaces kept  "), "  spaces kept  ");
  const std::string max(kMaxTextValueBytes, 'x');
  EXPECT_EQ(canon(ValueType::kText, max), max);
}

TEST(CanonicalTextTest, Refuses) {
  EXPECT_FALSE(canon(ValueType::kText, ""));
  EXPECT_FALSE(canon(ValueType::kText, std::string(kMaxTextValueBytes + 1, 'x')));
  EXPECT_FALSE(canon(ValueType::kText, "a\0b"s));
  EXPECT_FALSE(canon(ValueType::kText, "\0"s));
  for (std::string_view raw : {
           "\x80",              // lone continuation byte
           "\xC3",              // truncated 2-byte sequence
           "\xC3\x28",          // bad continuation
           "\xC0\xAF",          // overlong '/'
           "\xE0\x80\xAF",      // overlong 3-byte
           "\xF0\x80\x80\xAF",  // overlong 4-byte
           "\xED\xA0\x80",      // surrogate U+D800
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xF8\x88\x80\x80\x80", "\xFF",
           "ok\xE6\x9D",  // truncated at the end
       }) {
    EXPECT_FALSE(canon(ValueType::kText, raw)) << testing::PrintToString(raw);
  }
  // A multi-byte character straddling the limit is still counted in bytes.
  EXPECT_FALSE(canon(ValueType::kText, std::string(kMaxTextValueBytes - 1, 'x') + "ü"));
}

}  // namespace
}  // namespace tenantgate::policy
