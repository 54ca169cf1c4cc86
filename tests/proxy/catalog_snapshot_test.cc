// Parsing the app catalog snapshot's rows (DataRow bodies, protocol 55.7).
#include "proxy/catalog_snapshot.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace tenantgate::proxy {
namespace {

std::string data_row(const std::vector<std::optional<std::string>>& fields) {
  std::string out;
  auto i16 = [&](int v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
  };
  auto i32 = [&](int v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
  };
  i16(static_cast<int>(fields.size()));
  for (const auto& f : fields) {
    if (!f) {
      i32(-1);
      continue;
    }
    i32(static_cast<int>(f->size()));
    out += *f;
  }
  return out;
}

TEST(CatalogSnapshotTest, RowsOfEachKind) {
  CatalogSnapshotBuilder b;
  EXPECT_TRUE(b.add_row(data_row({"f", "public", "records_of", ""})));
  EXPECT_TRUE(b.add_row(data_row({"f", "app", "Mixed", ""})));
  EXPECT_TRUE(b.add_row(data_row({"o", "===", "public", "leak_eq"})));
  EXPECT_TRUE(b.add_row(data_row({"t", "checked_text", "public", "app_check"})));
  EXPECT_TRUE(b.add_row(data_row({"t", "checked_text", "public", "other"})));
  auto c = b.finish();
  EXPECT_EQ(c->functions.size(), 2u);
  EXPECT_TRUE(c->functions.contains({"app", "Mixed"}));
  EXPECT_EQ(c->operators.at("===").size(), 1u);
  EXPECT_EQ(c->types.at("checked_text").size(), 2u);
  EXPECT_NE(c->id, 0u);

  // The builder starts over; equal content gets the same id, other content another.
  EXPECT_TRUE(b.add_row(data_row({"f", "public", "records_of", ""})));
  EXPECT_TRUE(b.add_row(data_row({"f", "app", "Mixed", ""})));
  EXPECT_TRUE(b.add_row(data_row({"o", "===", "public", "leak_eq"})));
  EXPECT_TRUE(b.add_row(data_row({"t", "checked_text", "public", "other"})));
  EXPECT_TRUE(b.add_row(data_row({"t", "checked_text", "public", "app_check"})));
  EXPECT_EQ(b.finish()->id, c->id);
  EXPECT_NE(b.finish()->id, c->id);  // empty
}

TEST(CatalogSnapshotTest, MalformedRowsAreRejected) {
  CatalogSnapshotBuilder b;
  EXPECT_FALSE(b.add_row(data_row({"x", "a", "b", ""})));           // unknown kind
  EXPECT_FALSE(b.add_row(data_row({"f", "a", "b"})));               // three fields
  EXPECT_FALSE(b.add_row(data_row({"f", "a", std::nullopt, ""})));  // NULL
  std::string row = data_row({"f", "a", "b", ""});
  EXPECT_FALSE(b.add_row(row + "x"));  // trailing bytes
  for (std::size_t cut = 0; cut < row.size(); ++cut) {
    EXPECT_FALSE(b.add_row(row.substr(0, cut))) << cut;  // truncated
  }
  EXPECT_TRUE(b.add_row(row));
}

TEST(CatalogSnapshotTest, QueryNamesEveryCatalogItReads) {
  const std::string_view q = catalog_snapshot_query();
  for (const char* table : {"pg_catalog.pg_proc", "pg_catalog.pg_operator", "pg_catalog.pg_type",
                            "pg_catalog.pg_cast", "pg_catalog.pg_constraint"}) {
    EXPECT_NE(q.find(table), std::string_view::npos) << table;
  }
}

}  // namespace
}  // namespace tenantgate::proxy
