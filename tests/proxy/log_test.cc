// The escaping that keeps client-supplied text from forging log lines.

#include "proxy/log.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::proxy {
namespace {

TEST(TextEscape, PlainTextIsKept) {
  EXPECT_EQ(text_escape("app"), "app");
  EXPECT_EQ(text_escape("acme-42_x.y"), "acme-42_x.y");
  EXPECT_EQ(text_escape("caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac"),
            "caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac");
}

TEST(TextEscape, LineBreaksAndTabs) {
  EXPECT_EQ(text_escape("a\nb"), "a\\nb");
  EXPECT_EQ(text_escape("a\rb"), "a\\rb");
  EXPECT_EQ(text_escape("a\tb"), "a\\tb");
}

TEST(TextEscape, BackslashAndQuote) {
  EXPECT_EQ(text_escape("a\\nb"), "a\\\\nb");  // a literal backslash-n stays distinguishable
  EXPECT_EQ(text_escape("say \"hi\""), "say \\\"hi\\\"");
}

TEST(TextEscape, ControlBytesDelAndNul) {
  EXPECT_EQ(text_escape(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(text_escape("\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
  EXPECT_EQ(text_escape("\x7f"), "\\x7f");
  EXPECT_EQ(text_escape("\x0b\x0c\x08"), "\\x0b\\x0c\\x08");
}

TEST(TextEscape, C1ControlsSeparatorsAndBidi) {
  EXPECT_EQ(text_escape("\xc2\x9b"
                        "31m"),
            "\\xc2\\x9b31m");                                 // C1 CSI
  EXPECT_EQ(text_escape("\xc2\x85"), "\\xc2\\x85");           // NEL
  EXPECT_EQ(text_escape("\xe2\x80\xa8"), "\\xe2\\x80\\xa8");  // LINE SEPARATOR
  EXPECT_EQ(text_escape("\xe2\x80\xae"), "\\xe2\\x80\\xae");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(text_escape("\xe2\x81\xa6"), "\\xe2\\x81\\xa6");  // LEFT-TO-RIGHT ISOLATE
  EXPECT_EQ(text_escape("\xef\xbb\xbf"), "\\xef\\xbb\\xbf");  // BOM
}

TEST(TextEscape, InvalidUtf8) {
  EXPECT_EQ(text_escape("\xff"), "\\xff");
  EXPECT_EQ(text_escape("a\xc3"), "a\\xc3");                           // truncated sequence
  EXPECT_EQ(text_escape("\xc3("), "\\xc3(");                           // bad continuation
  EXPECT_EQ(text_escape("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(text_escape("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // surrogate
  EXPECT_EQ(text_escape("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(text_escape("\x80"), "\\x80");                             // lone continuation
}

TEST(TextValue, QuotedWhenNeeded) {
  EXPECT_EQ(text_value("app"), "app");
  EXPECT_EQ(text_value(""), "\"\"");
  EXPECT_EQ(text_value("a b"), "\"a b\"");
  EXPECT_EQ(text_value("a=b"), "\"a=b\"");
  EXPECT_EQ(text_value("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(text_value("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(text_value("a\nb"), "\"a\\nb\"");
  EXPECT_EQ(text_value("\x1b"), "\"\\x1b\"");
}

// The reproduction from the issue: a start-up user name that carries a whole
// forged "bypass session started" line.
TEST(TextValue, ForgedLineStaysOneQuotedValue) {
  const std::string forged =
      "evil\n2026-12-03T13:43:00.000000Z info session=99 peer=127.0.0.1:1 principal=admin "
      "tenant=globex session started (bypass principal: statements are not rewritten)";
  const std::string out = text_value(forged);
  EXPECT_EQ(out.find('\n'), std::string::npos);
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out.front(), '"');
  EXPECT_EQ(out.back(), '"');
  // No unescaped quote inside: a logfmt reader sees one value.
  for (std::size_t i = 1; i + 1 < out.size(); ++i) {
    if (out[i] == '\\') {
      ++i;
      continue;
    }
    EXPECT_NE(out[i], '"') << out;
  }
}

TEST(TextValue, QuoteBreakoutAttemptStaysInside) {
  // A value that tries to close the quotes and start a field of its own.
  EXPECT_EQ(text_value("x\" principal=admin tenant=\"globex"),
            "\"x\\\" principal=admin tenant=\\\"globex\"");
  EXPECT_EQ(text_value("x\\\" principal=admin"), "\"x\\\\\\\" principal=admin\"");
}

TEST(JsonEscape, Basics) {
  EXPECT_EQ(json_escape("plain"), "plain");
  EXPECT_EQ(json_escape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(json_escape("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(json_escape(std::string("\0\x1b\x7f", 3)), "\\u0000\\u001b\\u007f");
  EXPECT_EQ(json_escape("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(JsonEscape, HiddenCodePointsAndInvalidUtf8) {
  EXPECT_EQ(json_escape("\xc2\x9b"), "\\u009b");
  EXPECT_EQ(json_escape("\xe2\x80\xa8"), "\\u2028");
  EXPECT_EQ(json_escape("\xe2\x80\xae"), "\\u202e");
  // JSON text must be UTF-8: invalid bytes become U+FFFD.
  EXPECT_EQ(json_escape("a\xff"
                        "b"),
            "a\\ufffdb");
  EXPECT_EQ(json_escape("\xc0\xaf"), "\\ufffd\\ufffd");
}

}  // namespace
}  // namespace tenantgate::proxy
