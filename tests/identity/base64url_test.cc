#include "identity/base64url.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::identity {
namespace {

TEST(Base64UrlTest, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << n;
    bytes.push_back(static_cast<char>((n * 37 + 11) & 0xff));
  }
}

TEST(Base64UrlTest, KnownVectors) {
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
  EXPECT_EQ(base64url_decode(""), "");
}

TEST(Base64UrlTest, RefusesOtherSpellings) {
  EXPECT_FALSE(base64url_decode("Zg=="));    // padding
  EXPECT_FALSE(base64url_decode("Zm9v+/"));  // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm 9v"));   // white space
  EXPECT_FALSE(base64url_decode("Z"));       // impossible length
  EXPECT_FALSE(base64url_decode("Zh"));      // non-zero trailing bits ("Zg" is canonical)
  EXPECT_FALSE(base64url_decode("Zm9"));     // the same with 4 bits
  EXPECT_FALSE(base64url_decode(std::string("Zg\0", 3)));
}

}  // namespace
}  // namespace tenantgate::identity
