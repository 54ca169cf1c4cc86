#include "rewriter/pg_tree.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/message_differencer.h>
#include <pg_query.h>

#include <memory>

#include "rewriter/statement_limits.h"

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;

// Each level of a parse tree is two protobuf messages (Node and the message in
// its oneof); leave room for wrapper nodes the walker adds.
constexpr int kProtobufRecursionLimit = static_cast<int>(4 * kMaxNestingUnits + 1000);

bool decode(const char* data, std::size_t len, pg_query::ParseResult* out) {
  gp::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(data),
                                 static_cast<int>(len));
  input.SetRecursionLimit(kProtobufRecursionLimit);
  return out->ParseFromCodedStream(&input) && input.ConsumedEntireMessage();
}

class IgnoreLocations : public gp::util::MessageDifferencer::IgnoreCriteria {
 public:
  bool IsIgnored(const gp::Message&, const gp::Message&, const gp::FieldDescriptor* field,
                 const std::vector<gp::util::MessageDifferencer::SpecificField>&) override {
    const std::string& name = field->name();
    return name == "location" || name == "stmt_location" || name == "stmt_len";
  }
};

}  // namespace

std::optional<Refusal> parse_sql(const std::string& sql, pg_query::ParseResult* out) {
  PgQueryProtobufParseResult result = pg_query_parse_protobuf(sql.c_str());
  std::optional<Refusal> refusal;
  if (result.error != nullptr) {
    refusal = Refusal{"42601", result.error->message};
  } else if (!decode(result.parse_tree.data, result.parse_tree.len, out)) {
    refusal = Refusal{"54001", "statement is too deeply nested to analyse"};
  }
  pg_query_free_protobuf_parse_result(result);
  return refusal;
}

bool same_tree(const gp::Message& a, const gp::Message& b) {
  gp::util::MessageDifferencer differencer;
  differencer.AddIgnoreCriteria(new IgnoreLocations());  // takes ownership
  return differencer.Compare(a, b);
}

std::optional<Refusal> deparse_verified(const pg_query::Node& stmt, std::string* out) {
  pg_query::ParseResult tree;
  tree.set_version(PG_VERSION_NUM);
  *tree.add_stmts()->mutable_stmt() = stmt;
  std::string bytes;
  if (!tree.SerializeToString(&bytes)) {
    return Refusal{"0A000", "cannot serialise the rewritten statement"};
  }
  PgQueryProtobuf buffer{bytes.size(), bytes.data()};
  PgQueryDeparseResult deparsed = pg_query_deparse_protobuf(buffer);
  if (deparsed.error != nullptr) {
    Refusal refusal{"0A000", std::string("cannot deparse the rewritten statement: ") +
                                 deparsed.error->message};
    pg_query_free_deparse_result(deparsed);
    return refusal;
  }
  std::string text = deparsed.query;
  pg_query_free_deparse_result(deparsed);

  pg_query::ParseResult reparsed;
  if (parse_sql(text, &reparsed).has_value() || reparsed.stmts_size() != 1 ||
      !same_tree(reparsed.stmts(0).stmt(), stmt)) {
    return Refusal{"0A000",
                   "statement uses a construct that tenantgate cannot rewrite faithfully "
                   "(deparse verification failed)"};
  }
  *out = std::move(text);
  return std::nullopt;
}

}  // namespace tenantgate::rewriter
