#include "proxy/message_io.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::proxy {
namespace {

using namespace std::string_literals;

TEST(MessageReader, ReadsNetworkByteOrder) {
  const std::string body = "\x7f\xfe\xdc\x80\x00\x00\x01\xff\xff\xff\xfe"s;
  MessageReader r(body);
  EXPECT_EQ(r.u8(), 0x7f);
  EXPECT_EQ(r.i16(), static_cast<int16_t>(0xfedc));
  EXPECT_EQ(r.i32(), static_cast<int32_t>(0x80000001));
  EXPECT_EQ(r.remaining(), 4u);
  EXPECT_EQ(r.i32(), -2);
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.ok());
}

TEST(MessageReader, CstrExcludesTheNul) {
  const std::string body = "abc\x00\x00z"s;
  MessageReader r(body);
  EXPECT_EQ(r.cstr(), "abc");
  EXPECT_EQ(r.cstr(), "");
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_FALSE(r.at_end());
}

TEST(MessageReader, CstrWithoutTerminatorFailsAndStaysFailed) {
  MessageReader r("abc");
  EXPECT_FALSE(r.cstr());
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.at_end());
  EXPECT_FALSE(r.u8());
}

TEST(MessageReader, ShortReadsFailAndStayFailed) {
  {
    MessageReader r("\x01\x02\x03");
    EXPECT_FALSE(r.i32());
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.u8());  // the bytes are still there but the reader has failed
  }
  {
    MessageReader r("\x01");
    EXPECT_FALSE(r.i16());
  }
  {
    MessageReader r("");
    EXPECT_FALSE(r.u8());
    EXPECT_FALSE(r.at_end());
  }
  {
    MessageReader r("abc");
    EXPECT_EQ(r.bytes(3), "abc");
    EXPECT_TRUE(r.at_end());
    EXPECT_FALSE(r.bytes(1));
  }
}

TEST(MessageReader, ViewsPointIntoTheBody) {
  const std::string body = "xy\x00"s;
  MessageReader r(body);
  auto s = r.cstr();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->data(), body.data());
}

TEST(MessageWriter, TypedMessage) {
  MessageWriter w('Q');
  w.cstr("SELECT 1;");
  EXPECT_EQ(std::move(w).finish(), "Q\x00\x00\x00\x0eSELECT 1;\x00"s);
}

TEST(MessageWriter, UntypedPacketAndAllFieldKinds) {
  MessageWriter w(0);
  w.u8(0xab).i16(-2).i32(0x01020304).bytes("hi").cstr("");
  EXPECT_EQ(std::move(w).finish(), "\x00\x00\x00\x0e\xab\xff\xfe\x01\x02\x03\x04hi\x00"s);
}

TEST(MessageWriter, EmptyBody) { EXPECT_EQ(MessageWriter('X').finish(), "X\x00\x00\x00\x04"s); }

TEST(MessageWriter, CstrIsCutAtAnEmbeddedNul) {
  MessageWriter w('p');
  w.cstr(
      "pw\x00"
      "Mforged"s);
  EXPECT_EQ(std::move(w).finish(), "p\x00\x00\x00\x07pw\x00"s);
}

TEST(MessageWriter, LargeLengthWord) {
  MessageWriter w('d');
  w.bytes(std::string(0x10000, 'x'));
  const std::string m = std::move(w).finish();
  EXPECT_EQ(m.substr(0, 5), "d\x00\x01\x00\x04"s);
}

}  // namespace
}  // namespace tenantgate::proxy
