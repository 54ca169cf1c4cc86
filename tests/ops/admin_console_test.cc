// The admin console's command parsing and replies, decoded message by
// message (type, fields) from the bytes it returns.
#include "ops/admin_console.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace tenantgate::ops {
namespace {

class FakeBackend : public AdminBackend {
 public:
  AdminTable stats() override { return {{"outcome", "count"}, {{"rewritten", "3"}}}; }
  AdminTable clients() override { return {{"session", "principal"}, {{"1", "app"}, {"2", "ops"}}}; }
  AdminTable servers() override { return {{"session"}, {}}; }
  AdminTable pools() override { return {{"pool"}, {{"appdb"}}}; }
  AdminTable policy() override { return {{"version"}, {{"abc"}}}; }
  AdminTable config() override { return {{"key", "value"}, {{"listen.port", "6432"}}}; }
  std::optional<std::string> reload() override {
    ++reloads;
    return reload_problem;
  }
  std::optional<std::string> pause() override {
    paused = true;
    return std::nullopt;
  }
  std::optional<std::string> resume() override {
    paused = false;
    return std::nullopt;
  }
  int reloads = 0;
  bool paused = false;
  std::optional<std::string> reload_problem;
};

struct Message {
  char type;
  std::string body;
};

std::vector<Message> split(const std::string& bytes) {
  std::vector<Message> out;
  std::size_t i = 0;
  while (i + 5 <= bytes.size()) {
    uint32_t len;
    std::memcpy(&len, bytes.data() + i + 1, 4);
    len = ntohl(len);
    out.push_back({bytes[i], bytes.substr(i + 5, len - 4)});
    i += 1 + len;
  }
  EXPECT_EQ(i, bytes.size());
  return out;
}

TEST(AdminConsoleTest, ParsesCommands) {
  EXPECT_EQ(parse_admin_command("show stats"), AdminCommand::kShowStats);
  EXPECT_EQ(parse_admin_command("  SHOW   clients ;  "), AdminCommand::kShowClients);
  EXPECT_EQ(parse_admin_command("RELOAD;"), AdminCommand::kReload);
  EXPECT_EQ(parse_admin_command("show\tpolicy"), AdminCommand::kShowPolicy);
  EXPECT_EQ(parse_admin_command("SHOW"), std::nullopt);
  EXPECT_EQ(parse_admin_command("SHOW STATS; SHOW POOLS"), std::nullopt);
  EXPECT_EQ(parse_admin_command("SELECT 1"), std::nullopt);
}

TEST(AdminConsoleTest, ShowReturnsRowsThenReady) {
  FakeBackend b;
  auto m = split(admin_execute("SHOW CLIENTS", b));
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].type, 'T');
  EXPECT_NE(m[0].body.find("principal"), std::string::npos);
  EXPECT_EQ(m[1].type, 'D');
  EXPECT_NE(m[1].body.find("app"), std::string::npos);
  EXPECT_EQ(m[2].type, 'D');
  EXPECT_EQ(m[3].type, 'C');
  EXPECT_EQ(m[3].body, std::string("SHOW\0", 5));
  EXPECT_EQ(m[4].type, 'Z');
  EXPECT_EQ(m[4].body, "I");
}

TEST(AdminConsoleTest, ActionsCallTheBackend) {
  FakeBackend b;
  auto m = split(admin_execute("pause", b));
  EXPECT_TRUE(b.paused);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].type, 'C');
  EXPECT_EQ(m[0].body, std::string("PAUSE\0", 6));
  (void)admin_execute("RESUME", b);
  EXPECT_FALSE(b.paused);
  b.reload_problem = "policy.toml:3: unknown scope";
  m = split(admin_execute("RELOAD", b));
  EXPECT_EQ(b.reloads, 1);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].type, 'E');
  EXPECT_NE(m[0].body.find("58000"), std::string::npos);
  EXPECT_NE(m[0].body.find("unknown scope"), std::string::npos);
}

TEST(AdminConsoleTest, UnknownCommandsAreErrors) {
  FakeBackend b;
  auto m = split(admin_execute("SELECT * FROM users", b));
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].type, 'E');
  EXPECT_NE(m[0].body.find("42601"), std::string::npos);
  EXPECT_NE(m[0].body.find("SHOW STATS"), std::string::npos);
  EXPECT_EQ(m[1].type, 'Z');
  auto empty = split(admin_execute("  ; ", b));
  ASSERT_EQ(empty.size(), 2u);
  EXPECT_EQ(empty[0].type, 'I');
}

}  // namespace
}  // namespace tenantgate::ops
