#include "rewriter/pg_tree.h"

#include <google/protobuf/io/coded_stream.h>
#include <pg_query.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "rewriter/json_tree.h"
#include "rewriter/statement_limits.h"

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;

// JSON nesting per level of a parse tree: a Node object, the message in its
// oneof, and a list around it; leave room for wrapper nodes the walker adds.
constexpr int kJsonDepthLimit = static_cast<int>(8 * kMaxNestingUnits + 2000);

// Each level of a parse tree is two protobuf messages (Node and the message in
// its oneof).
constexpr int kProtobufRecursionLimit = static_cast<int>(4 * kMaxNestingUnits + 1000);

bool is_location(const gp::FieldDescriptor* field) {
  const std::string& name = field->name();
  return name == "location" || name == "stmt_location" || name == "stmt_len";
}

// The fields that matter for comparison, per message type of pg_query.proto
// (all top-level, so Descriptor::index() numbers them). Built once.
const std::vector<std::vector<const gp::FieldDescriptor*>>& significant_fields() {
  static const auto fields = [] {
    const gp::FileDescriptor* file = pg_query::Node::descriptor()->file();
    std::vector<std::vector<const gp::FieldDescriptor*>> out(file->message_type_count());
    for (int m = 0; m < file->message_type_count(); ++m) {
      const gp::Descriptor* d = file->message_type(m);
      for (int f = 0; f < d->field_count(); ++f) {
        if (!is_location(d->field(f))) out[m].push_back(d->field(f));
      }
    }
    return out;
  }();
  return fields;
}

bool equal_fields(const gp::Message& a, const gp::Message& b);

bool equal_scalar(const gp::Message& a, const gp::Message& b, const gp::FieldDescriptor* f) {
  using F = gp::FieldDescriptor;
  const gp::Reflection* ra = a.GetReflection();
  const gp::Reflection* rb = b.GetReflection();
  switch (f->cpp_type()) {
    case F::CPPTYPE_STRING:
      return ra->GetString(a, f) == rb->GetString(b, f);
    case F::CPPTYPE_INT32:
      return ra->GetInt32(a, f) == rb->GetInt32(b, f);
    case F::CPPTYPE_UINT32:
      return ra->GetUInt32(a, f) == rb->GetUInt32(b, f);
    case F::CPPTYPE_INT64:
      return ra->GetInt64(a, f) == rb->GetInt64(b, f);
    case F::CPPTYPE_UINT64:
      return ra->GetUInt64(a, f) == rb->GetUInt64(b, f);
    case F::CPPTYPE_BOOL:
      return ra->GetBool(a, f) == rb->GetBool(b, f);
    case F::CPPTYPE_ENUM:
      return ra->GetEnumValue(a, f) == rb->GetEnumValue(b, f);
    default:
      return false;  // pg_query.proto has no float or double fields
  }
}

bool equal_repeated_scalar(const gp::Message& a, const gp::Message& b, const gp::FieldDescriptor* f,
                           int i) {
  using F = gp::FieldDescriptor;
  const gp::Reflection* ra = a.GetReflection();
  const gp::Reflection* rb = b.GetReflection();
  switch (f->cpp_type()) {
    case F::CPPTYPE_STRING:
      return ra->GetRepeatedString(a, f, i) == rb->GetRepeatedString(b, f, i);
    case F::CPPTYPE_INT32:
      return ra->GetRepeatedInt32(a, f, i) == rb->GetRepeatedInt32(b, f, i);
    case F::CPPTYPE_UINT32:
      return ra->GetRepeatedUInt32(a, f, i) == rb->GetRepeatedUInt32(b, f, i);
    case F::CPPTYPE_INT64:
      return ra->GetRepeatedInt64(a, f, i) == rb->GetRepeatedInt64(b, f, i);
    case F::CPPTYPE_UINT64:
      return ra->GetRepeatedUInt64(a, f, i) == rb->GetRepeatedUInt64(b, f, i);
    case F::CPPTYPE_BOOL:
      return ra->GetRepeatedBool(a, f, i) == rb->GetRepeatedBool(b, f, i);
    case F::CPPTYPE_ENUM:
      return ra->GetRepeatedEnumValue(a, f, i) == rb->GetRepeatedEnumValue(b, f, i);
    default:
      return false;
  }
}

// Field-by-field comparison ignoring locations, linear in the size of the
// trees (protobuf's MessageDifferencer copies the path at every level, which
// is quadratic on deep trees).
bool equal_fields(const gp::Message& a, const gp::Message& b) {
  const gp::Descriptor* d = a.GetDescriptor();
  if (d != b.GetDescriptor()) return false;
  const gp::Reflection* ra = a.GetReflection();
  const gp::Reflection* rb = b.GetReflection();
  if (d == pg_query::Node::descriptor()) {
    // A oneof of ~240 message fields: look at the one that is set.
    const auto& na = static_cast<const pg_query::Node&>(a);
    const auto& nb = static_cast<const pg_query::Node&>(b);
    if (na.node_case() != nb.node_case()) return false;
    if (na.node_case() == pg_query::Node::NODE_NOT_SET) return true;
    const gp::FieldDescriptor* f = d->FindFieldByNumber(static_cast<int>(na.node_case()));
    return equal_fields(ra->GetMessage(a, f), rb->GetMessage(b, f));
  }
  if (d->file() != pg_query::Node::descriptor()->file() || d->containing_type() != nullptr) {
    return false;
  }
  for (const gp::FieldDescriptor* f : significant_fields()[d->index()]) {
    if (f->is_repeated()) {
      const int n = ra->FieldSize(a, f);
      if (n != rb->FieldSize(b, f)) return false;
      for (int i = 0; i < n; ++i) {
        if (f->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE
                ? !equal_fields(ra->GetRepeatedMessage(a, f, i), rb->GetRepeatedMessage(b, f, i))
                : !equal_repeated_scalar(a, b, f, i)) {
          return false;
        }
      }
    } else if (f->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE) {
      const bool has = ra->HasField(a, f);
      if (has != rb->HasField(b, f)) return false;
      if (has && !equal_fields(ra->GetMessage(a, f), rb->GetMessage(b, f))) return false;
    } else if (f->containing_oneof() != nullptr) {
      const bool has = ra->HasField(a, f);
      if (has != rb->HasField(b, f)) return false;
      if (has && !equal_scalar(a, b, f)) return false;
    } else if (!equal_scalar(a, b, f)) {
      return false;
    }
  }
  return true;
}

}  // namespace

namespace {

Refusal parse_error(std::string_view message) {
  // The grammar's own stack limit ("memory exhausted") is a statement too deep
  // to analyse, not a syntax error.
  return message.starts_with("memory exhausted")
             ? Refusal{"54001",
                       "statement is too deeply nested to analyse (" + std::string(message) + ")"}
             : Refusal{"42601", std::string(message)};
}

bool decode_protobuf(const char* data, std::size_t len, pg_query::ParseResult* out) {
  gp::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(data),
                                 static_cast<int>(len));
  input.SetRecursionLimit(kProtobufRecursionLimit);
  return out->ParseFromCodedStream(&input) && input.ConsumedEntireMessage();
}

// Clears every "location" field, as read_json_tree leaves them out.
void clear_locations(gp::Message* msg) {
  const gp::Reflection* r = msg->GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(*msg, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
          clear_locations(r->MutableRepeatedMessage(msg, f, i));
        }
      } else {
        clear_locations(r->MutableMessage(msg, f));
      }
    } else if (f->name() == "location") {
      r->ClearField(msg, f);
    }
  }
}

}  // namespace

std::optional<Refusal> parse_sql_protobuf(const std::string& sql, pg_query::ParseResult* out) {
  PgQueryProtobufParseResult result = pg_query_parse_protobuf(sql.c_str());
  std::optional<Refusal> refusal;
  if (result.error != nullptr) {
    refusal = parse_error(result.error->message);
  } else if (!decode_protobuf(result.parse_tree.data, result.parse_tree.len, out)) {
    refusal = Refusal{"54001", "statement is too deeply nested to analyse"};
  } else {
    clear_locations(out);
  }
  pg_query_free_protobuf_parse_result(result);
  return refusal;
}

std::optional<Refusal> parse_sql(const std::string& sql, pg_query::ParseResult* out,
                                 RangeVarPositions* range_vars) {
  PgQueryParseResult result = pg_query_parse(sql.c_str());
  std::optional<Refusal> refusal;
  bool use_protobuf = false;
  if (result.error != nullptr) {
    refusal = parse_error(result.error->message);
  } else {
    const JsonTreeOptions options{.max_depth = kJsonDepthLimit, .range_var_locations = range_vars};
    switch (read_json_tree(result.parse_tree, out, options)) {
      case JsonTreeStatus::kOk:
        break;
      case JsonTreeStatus::kAmbiguousInteger:
        use_protobuf = true;
        break;
      case JsonTreeStatus::kTooDeep:
        refusal = Refusal{"54001", "statement is too deeply nested to analyse"};
        break;
      case JsonTreeStatus::kInvalidUtf8:
        refusal = Refusal{"22021", "invalid byte sequence for encoding \"UTF8\""};
        break;
      case JsonTreeStatus::kMalformed:
        refusal = Refusal{"0A000", "tenantgate cannot read the parse tree of this statement"};
        break;
    }
  }
  pg_query_free_parse_result(result);
  if (use_protobuf) {
    out->Clear();
    if (range_vars != nullptr) range_vars->clear();
    return parse_sql_protobuf(sql, out);
  }
  return refusal;
}

bool same_tree(const gp::Message& a, const gp::Message& b) { return equal_fields(a, b); }

namespace {

void append_varint(std::string* out, std::uint64_t v) {
  while (v >= 0x80) {
    *out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *out += static_cast<char>(v);
}

// ParseResult{version, stmts: [RawStmt{stmt}]} in protobuf's wire format
// (pg_query.proto: ParseResult.version = 1, .stmts = 2; RawStmt.stmt = 1),
// written around the statement's own serialisation `node`.
std::string wrap_single_statement(std::string_view node) {
  std::string node_header;
  node_header += '\x0a';
  append_varint(&node_header, node.size());
  std::string out;
  out.reserve(node.size() + 32);
  out += '\x08';
  append_varint(&out, PG_VERSION_NUM);
  out += '\x12';
  append_varint(&out, node_header.size() + node.size());
  out += node_header;
  out += node;
  return out;
}

}  // namespace

namespace {

// True when `text` parses into exactly one statement that serialises to
// `node`. Both trees come from parse_sql, which leaves out source positions,
// and the walker adds none: equal trees serialise to the same bytes.
bool reparses_to(const std::string& text, const std::string& node) {
  gp::Arena arena(tree_arena_options());
  auto* reparsed = gp::Arena::CreateMessage<pg_query::ParseResult>(&arena);
  std::string again;
  return !parse_sql(text, reparsed).has_value() && reparsed->stmts_size() == 1 &&
         reparsed->stmts(0).stmt().SerializeToString(&again) && again == node;
}

}  // namespace

bool parses_to(const std::string& text, const pg_query::Node& stmt) {
  std::string node;
  return stmt.SerializeToString(&node) && reparses_to(text, node);
}

std::optional<Refusal> deparse_verified(const pg_query::Node& stmt, std::string* out) {
  std::string node;
  if (!stmt.SerializeToString(&node)) {
    return Refusal{"0A000", "cannot serialise the rewritten statement"};
  }
  std::string bytes = wrap_single_statement(node);
  PgQueryProtobuf buffer{bytes.size(), bytes.data()};
  PgQueryDeparseResult deparsed = pg_query_deparse_protobuf(buffer);
  if (deparsed.error != nullptr) {
    Refusal refusal{
        "0A000", std::string("cannot deparse the rewritten statement: ") + deparsed.error->message};
    pg_query_free_deparse_result(deparsed);
    return refusal;
  }
  std::string text = deparsed.query;
  pg_query_free_deparse_result(deparsed);

  if (!reparses_to(text, node)) {
    return Refusal{"0A000",
                   "statement uses a construct that tenantgate cannot rewrite faithfully "
                   "(deparse verification failed)"};
  }
  *out = std::move(text);
  return std::nullopt;
}

google::protobuf::ArenaOptions tree_arena_options() {
  google::protobuf::ArenaOptions options;
  // A 166-byte ORM statement decodes into ~10 KB of messages.
  options.start_block_size = 16 * 1024;
  options.max_block_size = 256 * 1024;
  return options;
}

}  // namespace tenantgate::rewriter
