// The operations keys of tenantgate.toml: [admin], [audit],
// [policy] enforcement and the principals' admin and enforcement flags.
#include <gtest/gtest.h>

#include "config/config.h"

namespace tenantgate::config {
namespace {

Config parse(const std::string& text) { return parse_config(text, "/etc/tg/tenantgate.toml"); }

void expect_error(const std::string& text, int line, const std::string& reason) {
  try {
    (void)parse_config(text, "c.toml");
    ADD_FAILURE() << "no error; expected line " << line << ": " << reason << "\n" << text;
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    const std::string prefix = "c.toml:" + std::to_string(line) + ": ";
    EXPECT_TRUE(what.starts_with(prefix)) << what << "\nexpected prefix " << prefix;
    EXPECT_NE(what.find(reason), std::string::npos) << what << "\nexpected " << reason;
  }
}

TEST(OperationsConfigTest, DefaultsAreOff) {
  Config c = parse("");
  EXPECT_FALSE(c.admin.enabled);
  EXPECT_EQ(c.audit.mode, AuditMode::kOff);
  EXPECT_EQ(c.audit.file, "");
  EXPECT_EQ(c.audit.queue_events, 65536u);
  EXPECT_EQ(c.enforcement, Enforcement::kEnforce);
}

TEST(OperationsConfigTest, AdminListen) {
  Config c = parse("[admin]\nlisten = \"127.0.0.1:9187\"\n");
  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.host, "127.0.0.1");
  EXPECT_EQ(c.admin.port, 9187);
  Config v6 = parse("[admin]\nlisten = \"[::1]:0\"\n");
  EXPECT_EQ(v6.admin.host, "::1");
  EXPECT_EQ(v6.admin.port, 0);
}

TEST(OperationsConfigTest, AdminErrors) {
  expect_error("[admin]\nlisten = \"127.0.0.1\"\n", 2, "is not \"host:port\"");
  expect_error("[admin]\nlisten = \"127.0.0.1:99999\"\n", 2, "invalid port");
  expect_error("[admin]\nlisten = \"127.0.0.1:x\"\n", 2, "invalid port");
  expect_error("[admin]\nport = 1\n", 2, "unknown key \"port\" in [admin]");
}

TEST(OperationsConfigTest, Audit) {
  Config c = parse("[audit]\nmode = \"writes\"\nfile = \"audit/tg.jsonl\"\nqueue_events = 10\n");
  EXPECT_EQ(c.audit.mode, AuditMode::kWrites);
  EXPECT_EQ(c.audit.file, "/etc/tg/audit/tg.jsonl");
  EXPECT_EQ(c.audit.queue_events, 10u);
  for (auto [name, mode] :
       {std::pair{"off", AuditMode::kOff}, std::pair{"refusals", AuditMode::kRefusals},
        std::pair{"all", AuditMode::kAll}}) {
    EXPECT_EQ(parse(std::string("[audit]\nmode = \"") + name + "\"\n").audit.mode, mode);
    EXPECT_EQ(audit_mode_name(mode), name);
  }
  expect_error("[audit]\nmode = \"some\"\n", 2, "unknown audit.mode \"some\"");
  expect_error("[audit]\nqueue_events = 0\n", 2, "out of range");
  expect_error("[audit]\nfile = \"\"\n", 2, "file is empty");
}

TEST(OperationsConfigTest, Enforcement) {
  Config c = parse(
      "[policy]\nenforcement = \"shadow\"\n"
      "[[principals]]\nname = \"ops\"\nadmin = true\nbypass = true\n"
      "[[principals]]\nname = \"app\"\nenforcement = \"enforce\"\n"
      "[auth]\nmode = \"passthrough\"\n");
  EXPECT_EQ(c.enforcement, Enforcement::kShadow);
  ASSERT_EQ(c.principals.size(), 2u);
  EXPECT_TRUE(c.principals[0].admin);
  EXPECT_FALSE(c.principals[0].enforcement.has_value());
  EXPECT_FALSE(c.principals[1].admin);
  EXPECT_EQ(c.principals[1].enforcement, Enforcement::kEnforce);
  EXPECT_EQ(enforcement_name(Enforcement::kShadow), "shadow");
  expect_error("[policy]\nenforcement = \"observe\"\n", 2,
               "unknown enforcement \"observe\" (expected enforce | shadow)");
  expect_error("[auth]\nmode = \"passthrough\"\n[[principals]]\nname = \"a\"\nadmin = 1\n", 5,
               "admin must be true or false");
}

}  // namespace
}  // namespace tenantgate::config
