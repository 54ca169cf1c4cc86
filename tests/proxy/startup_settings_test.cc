#include "proxy/startup_settings.h"

#include <gtest/gtest.h>

namespace tenantgate::proxy {
namespace {

StartupParams with(std::string name, std::string value) {
  return {{"user", "app"}, {"database", "appdb"}, {std::move(name), std::move(value)}};
}

TEST(StartupSettingsTest, HarmlessSettingsPass) {
  EXPECT_FALSE(check_startup_settings({{"user", "app"}}));
  EXPECT_FALSE(check_startup_settings(with("application_name", "psql")));
  EXPECT_FALSE(check_startup_settings(with("client_encoding", "UTF8")));
  EXPECT_FALSE(check_startup_settings(with("client_encoding", "utf-8")));
  EXPECT_FALSE(check_startup_settings(with("DateStyle", "ISO, MDY")));
  EXPECT_FALSE(check_startup_settings(with("options", "-c statement_timeout=5s --TimeZone=UTC")));
  EXPECT_FALSE(check_startup_settings(with("options", "-cextra-float-digits=3")));
}

TEST(StartupSettingsTest, SettingsThatChangeHowStatementsAreReadAreRefused) {
  EXPECT_TRUE(check_startup_settings(with("client_encoding", "SJIS")));
  EXPECT_TRUE(check_startup_settings(with("client_encoding", "BIG5")));
  EXPECT_TRUE(check_startup_settings(with("standard_conforming_strings", "off")));
  EXPECT_TRUE(check_startup_settings(with("search_path", "other,public")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c client_encoding=SJIS")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c standard_conforming_strings=off")));
  EXPECT_TRUE(check_startup_settings(with("options", "--search-path=other")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c role=admin")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c session_authorization=postgres")));
  EXPECT_TRUE(check_startup_settings(with("replication", "database")));
  EXPECT_TRUE(check_startup_settings(with("row_security", "off")));
}

TEST(StartupSettingsTest, OtherBackendSwitchesAndMalformedOptionsAreRefused) {
  EXPECT_TRUE(check_startup_settings(with("options", "-B 1000")));
  EXPECT_TRUE(check_startup_settings(with("options", "-e")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c application_name")));
  EXPECT_TRUE(check_startup_settings(with("options", "-c application_name=x\\")));
  // An escaped space keeps the value in one word: still one allowed setting.
  EXPECT_FALSE(check_startup_settings(with("options", "-c application_name=a\\ b")));
  // ...but it cannot hide a second setting.
  EXPECT_TRUE(check_startup_settings(
      with("options", "-c application_name=a -c standard_conforming_strings=off")));
}

}  // namespace
}  // namespace tenantgate::proxy
