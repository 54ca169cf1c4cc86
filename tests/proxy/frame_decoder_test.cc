// Frame decoder tests in the style of Envoy's postgres decoder tests: byte
// buffers built by hand, and after every call the status, the frame and the
// bytes it claims are checked. Each message type tenantgate parses is framed
// whole, split at every offset, twice in one buffer, and its body is handed to
// its parser with a missing terminator / truncation / trailing garbage.
#include "proxy/frame_decoder.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "proxy/messages.h"
#include "proxy/startup_packet.h"

namespace tenantgate::proxy {
namespace {

using namespace std::string_literals;

constexpr std::size_t kMax = 1 << 20;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// Framing written out by hand here, independently of MessageWriter.
std::string typed(char type, const std::string& body) {
  return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
std::string untyped(const std::string& body) {
  return be32(static_cast<uint32_t>(body.size() + 4)) + body;
}

TEST(FrameDecoder, LiteralQueryFrame) {
  // Q, length 14, "SELECT 1;" NUL: as captured from psql.
  const std::string buf = "Q\x00\x00\x00\x0eSELECT 1;\x00"s;
  const DecodeResult r = decode_message(buf, kMax);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.type, 'Q');
  EXPECT_EQ(r.frame.total_size, 15u);
  EXPECT_EQ(r.frame.body, "SELECT 1;\x00"s);
  EXPECT_TRUE(r.error.empty());
}

TEST(FrameDecoder, EmptyBufferNeedsMore) {
  EXPECT_EQ(decode_message("", kMax).status, DecodeStatus::kNeedMore);
  EXPECT_EQ(decode_startup_packet("", kMax).status, DecodeStatus::kNeedMore);
}

TEST(FrameDecoder, EmptyBodyMessage) {
  const std::string buf = "X\x00\x00\x00\x04"s;  // Terminate
  const DecodeResult r = decode_message(buf, kMax);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.type, 'X');
  EXPECT_EQ(r.frame.total_size, 5u);
  EXPECT_TRUE(r.frame.body.empty());
}

TEST(FrameDecoder, TypedLengthBelowMinimum) {
  for (uint32_t len : {0u, 1u, 3u, 0x80000000u, 0xffffffffu}) {
    const std::string buf = "Q" + be32(len) + "abcdef";
    const DecodeResult r = decode_message(buf, kMax);
    EXPECT_EQ(r.status, DecodeStatus::kError) << len;
    EXPECT_EQ(r.error, "message length is below the minimum 4") << len;
  }
}

TEST(FrameDecoder, TypedLengthAboveMaximumIsReportedFromTheHeaderAlone) {
  // max counts the type byte: 1 + 99 = 100 is allowed, 1 + 100 is not.
  const DecodeResult ok = decode_message("Q" + be32(99), 100);
  EXPECT_EQ(ok.status, DecodeStatus::kNeedMore);
  const DecodeResult r = decode_message("Q" + be32(100), 100);
  EXPECT_EQ(r.status, DecodeStatus::kError);
  EXPECT_EQ(r.error, "message length exceeds the maximum message size");
  EXPECT_EQ(decode_message("Q" + be32(0x7fffffff), kMax).status, DecodeStatus::kError);
}

TEST(FrameDecoder, TypedAtExactlyTheMaximum) {
  const std::string buf = typed('d', std::string(95, 'x'));  // 100 bytes
  ASSERT_EQ(buf.size(), 100u);
  EXPECT_EQ(decode_message(buf, 100).status, DecodeStatus::kMessage);
  EXPECT_EQ(decode_message(buf, 99).status, DecodeStatus::kError);
}

TEST(FrameDecoder, StartupLengthBelowMinimum) {
  for (uint32_t len : {0u, 4u, 7u, 0xffffffffu}) {
    const std::string buf = be32(len) + "\x00\x03\x00\x00"s;
    const DecodeResult r = decode_startup_packet(buf, kMax);
    EXPECT_EQ(r.status, DecodeStatus::kError) << len;
    EXPECT_EQ(r.error, "start-up packet length is below the minimum 8") << len;
  }
}

TEST(FrameDecoder, StartupLengthAboveMaximum) {
  EXPECT_EQ(decode_startup_packet(be32(10000), 10000).status, DecodeStatus::kNeedMore);
  const DecodeResult r = decode_startup_packet(be32(10001), 10000);
  EXPECT_EQ(r.status, DecodeStatus::kError);
  EXPECT_EQ(r.error, "start-up packet length exceeds the maximum start-up packet size");
}

TEST(FrameDecoder, StartupOfExactlyEightBytes) {
  const std::string buf = "\x00\x00\x00\x08\x04\xd2\x16\x2f"s;  // SSLRequest
  const DecodeResult r = decode_startup_packet(buf, kMax);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.type, 0);
  EXPECT_EQ(r.frame.total_size, 8u);
  EXPECT_EQ(r.frame.body, "\x04\xd2\x16\x2f"s);
}

TEST(FrameDecoder, FrameViewsPointIntoTheBuffer) {
  const std::string buf = typed('Q', "x"s + '\0') + "trailing";
  const DecodeResult r = decode_message(buf, kMax);
  ASSERT_EQ(r.status, DecodeStatus::kMessage);
  EXPECT_EQ(r.frame.body.data(), buf.data() + 5);
}

// ---- every message type the codec parses ----

struct Case {
  const char* name;
  char type;         // 0: start-up packet
  std::string body;  // valid body
  std::function<bool(std::string_view)> parses;
  // Bodies ending in free-form data (SASL payloads) stay valid when truncated
  // or extended; all others must be refused.
  bool open_ended = false;
};

bool startup_ok(std::string_view body) {
  return std::holds_alternative<StartupPacket>(parse_startup_packet(body));
}

std::vector<Case> all_cases() {
  const auto i16 = [](int v) {
    return std::string{static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
  };
  std::vector<Case> cases = {
      {"StartupMessage", 0,
       "\x00\x03\x00\x00user\x00"
       "alice\x00"
       "database\x00"
       "db\x00\x00"s,
       startup_ok},
      {"SSLRequest", 0, be32(80877103), startup_ok},
      {"GSSENCRequest", 0, be32(80877104), startup_ok},
      {"CancelRequest", 0, be32(80877102) + be32(1234) + be32(0x5a5a5a5a), startup_ok},
      {"Query", 'Q', "SELECT 1"s + '\0',
       [](std::string_view b) { return parse_query(b).has_value(); }},
      {"Parse", 'P', "s1\x00SELECT $1\x00"s + i16(1) + be32(23),
       [](std::string_view b) { return parse_parse(b).has_value(); }},
      {"Bind", 'B',
       "p\x00s1\x00"s + i16(1) + i16(0) + i16(2) + be32(2) + "42" + be32(0xffffffff) + i16(1) +
           i16(1),
       [](std::string_view b) { return parse_bind(b).has_value(); }},
      {"Describe", 'D', "Sstmt\x00"s,
       [](std::string_view b) { return parse_describe_or_close(b).has_value(); }},
      {"Close", 'C', "Pportal\x00"s,
       [](std::string_view b) { return parse_describe_or_close(b).has_value(); }},
      {"PasswordMessage", 'p', "secret\x00"s,
       [](std::string_view b) { return parse_password_message(b).has_value(); }},
      {"SASLInitialResponse", 'p', "SCRAM-SHA-256\x00"s + be32(5) + "n,,ab",
       [](std::string_view b) { return parse_sasl_initial_response(b).has_value(); }},
      {"ErrorResponse", 'E',
       "SERROR\x00VERROR\x00"
       "C28000\x00Mno\x00\x00"s,
       [](std::string_view b) { return parse_error_fields(b).has_value(); }},
      {"NoticeResponse", 'N',
       "SWARNING\x00"
       "C01000\x00Mhm\x00"
       "Dmore\x00\x00"s,
       [](std::string_view b) { return parse_error_fields(b).has_value(); }},
      {"AuthenticationOk", 'R', be32(0),
       [](std::string_view b) { return parse_auth_request(b).has_value(); }},
      {"AuthenticationCleartextPassword", 'R', be32(3),
       [](std::string_view b) { return parse_auth_request(b).has_value(); }},
      {"AuthenticationMD5Password", 'R', be32(5) + "\x01\x02\x03\x04",
       [](std::string_view b) { return parse_auth_request(b).has_value(); }},
      {"AuthenticationSASL", 'R', be32(10) + "SCRAM-SHA-256\x00\x00"s,
       [](std::string_view b) { return parse_auth_request(b).has_value(); }},
      {"AuthenticationSASLContinue", 'R', be32(11) + "r=abc,s=c2FsdA==,i=4096",
       [](std::string_view b) { return parse_auth_request(b).has_value(); }, true},
      {"AuthenticationSASLFinal", 'R', be32(12) + "v=abc",
       [](std::string_view b) { return parse_auth_request(b).has_value(); }, true},
      {"BackendKeyData", 'K', be32(42) + be32(0xdeadbeef),
       [](std::string_view b) { return parse_backend_key_data(b).has_value(); }},
      {"ParameterStatus", 'S', "client_encoding\x00UTF8\x00"s,
       [](std::string_view b) { return parse_parameter_status(b).has_value(); }},
      {"ReadyForQuery", 'Z', "I",
       [](std::string_view b) { return parse_ready_for_query(b).has_value(); }},
  };
  return cases;
}

DecodeResult decode(const Case& c, std::string_view buf) {
  return c.type == 0 ? decode_startup_packet(buf, kMax) : decode_message(buf, kMax);
}

std::string frame_of(const Case& c) {
  return c.type == 0 ? untyped(c.body) : typed(c.type, c.body);
}

TEST(FramedMessages, WholeFrameDecodesAndParses) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    const std::string buf = frame_of(c);
    const DecodeResult r = decode(c, buf);
    ASSERT_EQ(r.status, DecodeStatus::kMessage);
    EXPECT_EQ(r.frame.type, c.type);
    EXPECT_EQ(r.frame.total_size, buf.size());
    EXPECT_EQ(r.frame.body, c.body);
    EXPECT_TRUE(c.parses(r.frame.body));
  }
}

TEST(FramedMessages, SplitAtEveryOffsetNeedsMoreUntilWhole) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    const std::string buf = frame_of(c);
    for (std::size_t n = 0; n < buf.size(); ++n) {
      const DecodeResult r = decode(c, std::string_view(buf).substr(0, n));
      EXPECT_EQ(r.status, DecodeStatus::kNeedMore) << "prefix of " << n << " bytes";
    }
    const DecodeResult r = decode(c, buf);
    ASSERT_EQ(r.status, DecodeStatus::kMessage);
    EXPECT_EQ(r.frame.total_size, buf.size());
    EXPECT_EQ(r.frame.body, c.body);
  }
}

TEST(FramedMessages, TwoInOneBuffer) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    const std::string one = frame_of(c);
    const std::string buf = one + one;
    const DecodeResult first = decode(c, buf);
    ASSERT_EQ(first.status, DecodeStatus::kMessage);
    EXPECT_EQ(first.frame.total_size, one.size());
    EXPECT_EQ(first.frame.body, c.body);
    const std::string_view rest = std::string_view(buf).substr(first.frame.total_size);
    const DecodeResult second = decode(c, rest);
    ASSERT_EQ(second.status, DecodeStatus::kMessage);
    EXPECT_EQ(second.frame.total_size, one.size());
    EXPECT_EQ(second.frame.body, c.body);
    EXPECT_EQ(rest.size() - second.frame.total_size, 0u);
  }
}

TEST(FramedMessages, OversizedIsAnError) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    const std::string buf = frame_of(c);
    const DecodeResult r = c.type == 0 ? decode_startup_packet(buf, buf.size() - 1)
                                       : decode_message(buf, buf.size() - 1);
    EXPECT_EQ(r.status, DecodeStatus::kError);
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(FramedMessages, UndersizedLengthIsAnError) {
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    std::string buf = frame_of(c);
    const std::size_t at = c.type == 0 ? 0 : 1;
    buf.replace(at, 4, be32(c.type == 0 ? 7 : 3));
    EXPECT_EQ(decode(c, buf).status, DecodeStatus::kError);
  }
}

TEST(FramedMessages, LengthOneShortCutsTheBodyAndTheParserRefusesIt) {
  for (const Case& c : all_cases()) {
    if (c.open_ended) continue;
    SCOPED_TRACE(c.name);
    std::string buf = frame_of(c);
    const std::size_t at = c.type == 0 ? 0 : 1;
    buf.replace(at, 4, be32(static_cast<uint32_t>(c.body.size() + 3)));
    const DecodeResult r = decode(c, buf);
    if (r.status == DecodeStatus::kError) continue;  // below the minimum length
    ASSERT_EQ(r.status, DecodeStatus::kMessage);
    EXPECT_EQ(r.frame.total_size, buf.size() - 1);
    EXPECT_FALSE(c.parses(r.frame.body));
  }
}

TEST(FramedMessages, EveryTruncatedBodyIsRefused) {
  for (const Case& c : all_cases()) {
    if (c.open_ended) continue;
    SCOPED_TRACE(c.name);
    for (std::size_t n = 0; n < c.body.size(); ++n) {
      EXPECT_FALSE(c.parses(std::string_view(c.body).substr(0, n))) << n << " bytes";
    }
  }
}

TEST(FramedMessages, TrailingGarbageIsRefused) {
  for (const Case& c : all_cases()) {
    if (c.open_ended) continue;
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(c.parses(c.body + "x"));
    EXPECT_FALSE(c.parses(c.body + '\0'));
  }
}

}  // namespace
}  // namespace tenantgate::proxy
