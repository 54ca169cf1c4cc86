#include "proxy/startup_packet.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::proxy {
namespace {

using namespace std::string_literals;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

StartupPacket parse_ok(std::string_view body) {
  auto r = parse_startup_packet(body);
  if (auto* e = std::get_if<StartupParseError>(&r)) {
    ADD_FAILURE() << "unexpected error: " << e->message;
    return {};
  }
  return std::get<StartupPacket>(std::move(r));
}

std::string parse_error(std::string_view body) {
  auto r = parse_startup_packet(body);
  if (auto* e = std::get_if<StartupParseError>(&r)) return e->message;
  ADD_FAILURE() << "expected an error";
  return {};
}

const std::string kV3 = be32(196608);

TEST(StartupPacket, StartupMessageKeepsParametersInOrder) {
  const StartupPacket p = parse_ok(kV3 +
                                   "user\x00"
                                   "app\x00options\x00-c x=1\x00"
                                   "database\x00"
                                   "db\x00\x00"s);
  EXPECT_EQ(p.kind, StartupPacket::Kind::kStartup);
  EXPECT_EQ(p.protocol, kProtocolVersion3);
  const StartupParams want = {{"user", "app"}, {"options", "-c x=1"}, {"database", "db"}};
  EXPECT_EQ(p.params, want);
}

TEST(StartupPacket, EmptyValuesAreAllowed) {
  const StartupPacket p = parse_ok(kV3 +
                                   "user\x00u\x00"
                                   "application_name\x00\x00\x00"s);
  ASSERT_NE(find_param(p.params, "application_name"), nullptr);
  EXPECT_EQ(*find_param(p.params, "application_name"), "");
}

TEST(StartupPacket, MinorVersionsOf3AreAcceptedAndRecorded) {
  const StartupPacket p = parse_ok(be32(196608 + 2) + "user\x00u\x00\x00"s);
  EXPECT_EQ(p.protocol, 196610);
  EXPECT_EQ(parse_ok(be32(196608 + 0xffff) + "user\x00u\x00\x00"s).protocol, 0x3ffff);
}

TEST(StartupPacket, OtherMajorsAreRefused) {
  EXPECT_EQ(parse_error(be32(0x00020000) + "user\x00u\x00\x00"s),
            "unsupported frontend protocol 2.0: tenantgate supports 3.0 to 3.x");
  EXPECT_EQ(parse_error(be32(0x00040000) + "user\x00u\x00\x00"s),
            "unsupported frontend protocol 4.0: tenantgate supports 3.0 to 3.x");
  EXPECT_FALSE(parse_error(be32(1234)).empty());
}

TEST(StartupPacket, SslAndGssEncRequests) {
  EXPECT_EQ(parse_ok(be32(80877103)).kind, StartupPacket::Kind::kSsl);
  EXPECT_EQ(parse_ok(be32(80877104)).kind, StartupPacket::Kind::kGssEnc);
  EXPECT_EQ(parse_error(be32(80877103) + "x"), "SSLRequest has bytes after its code");
  EXPECT_EQ(parse_error(be32(80877104) + "x"), "GSSENCRequest has bytes after its code");
}

TEST(StartupPacket, CancelRequestIsExactlyTwelveBytesOfBody) {
  const StartupPacket p = parse_ok(be32(80877102) + be32(4242) + be32(0x80000001));
  EXPECT_EQ(p.kind, StartupPacket::Kind::kCancel);
  EXPECT_EQ(p.cancel_pid, 4242);
  EXPECT_EQ(p.cancel_key, static_cast<int32_t>(0x80000001));
  EXPECT_EQ(parse_error(be32(80877102) + be32(4242) + "abc"),
            "CancelRequest is not exactly 16 bytes long");
  EXPECT_EQ(parse_error(be32(80877102) + be32(4242) + be32(1) + "x"),
            "CancelRequest is not exactly 16 bytes long");
}

TEST(StartupPacket, ShorterThanTheCode) {
  EXPECT_EQ(parse_error("\x00\x03"s), "start-up packet is shorter than its 4-byte code");
}

TEST(StartupPacket, DuplicateNamesAreRefused) {
  EXPECT_EQ(parse_error(kV3 + "user\x00u\x00user\x00v\x00\x00"s),
            "start-up packet parameter \"user\" is given twice");
}

TEST(StartupPacket, NameWithoutValue) {
  EXPECT_EQ(parse_error(kV3 + "user\x00u\x00"
                              "database\x00"s),
            "start-up packet parameter \"database\" has no value");
}

TEST(StartupPacket, MissingFinalTerminator) {
  EXPECT_EQ(parse_error(kV3 + "user\x00u\x00"s), "start-up packet is missing its final terminator");
  EXPECT_EQ(parse_error(kV3 + "user\x00u\x00"
                              "data"s),
            "start-up packet is missing its final terminator");
  EXPECT_EQ(parse_error(kV3), "start-up packet is missing its final terminator");
}

TEST(StartupPacket, BytesAfterTheTerminator) {
  EXPECT_EQ(parse_error(kV3 + "user\x00u\x00\x00x\x00y\x00\x00"s),
            "invalid start-up packet layout: expected terminator as last byte");
}

TEST(StartupPacket, MissingOrEmptyUser) {
  EXPECT_EQ(parse_error(kV3 + "database\x00"
                              "db\x00\x00"s),
            "no user name specified in start-up packet");
  EXPECT_EQ(parse_error(kV3 + "user\x00\x00\x00"s), "no user name specified in start-up packet");
  EXPECT_EQ(parse_error(kV3 + "\x00"s), "no user name specified in start-up packet");
}

TEST(StartupPacket, EncodeStartupMessage) {
  const std::string m = encode_startup_message({{"user", "u"}, {"database", "d"}});
  EXPECT_EQ(m,
            "\x00\x00\x00\x1b\x00\x03\x00\x00user\x00u\x00"
            "database\x00"
            "d\x00\x00"s);
  const StartupPacket p = parse_ok(std::string_view(m).substr(4));
  EXPECT_EQ(p.params, (StartupParams{{"user", "u"}, {"database", "d"}}));
}

TEST(StartupPacket, EncodeCancelRequest) {
  EXPECT_EQ(encode_cancel_request(1, -1),
            "\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\xff\xff\xff\xff"s);
}

TEST(StartupPacket, FindParam) {
  const StartupParams params = {{"user", "u"}, {"options", ""}};
  ASSERT_NE(find_param(params, "options"), nullptr);
  EXPECT_EQ(*find_param(params, "user"), "u");
  EXPECT_EQ(find_param(params, "User"), nullptr);
  EXPECT_EQ(find_param(params, "database"), nullptr);
}

}  // namespace
}  // namespace tenantgate::proxy
