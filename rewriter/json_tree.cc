#include "rewriter/json_tree.h"

#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "pg_query.pb.h"
#include "rewriter/escapes.h"

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;
using Field = gp::FieldDescriptor;

// Per message type of pg_query.proto (all top-level, so Descriptor::index()
// numbers them): its reflection, and JSON key -> field. Both the json_name
// and the proto name are accepted: libpg_query writes the json_name where the
// proto sets one and the field name otherwise. Built once.
// An open-addressing table from JSON key to field: keys are short and
// std::unordered_map's hashing dominated the lookups.
class KeyTable {
 public:
  void add(std::string_view key, const Field* field) { entries_.push_back({key, field}); }
  // Call once after the last add().
  void build() {
    std::size_t capacity = 4;
    while (capacity < 2 * entries_.size()) capacity *= 2;
    slots_.assign(capacity, -1);
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      std::size_t slot = hash(entries_[i].key) & (capacity - 1);
      while (slots_[slot] >= 0) {
        if (entries_[static_cast<std::size_t>(slots_[slot])].key == entries_[i].key) break;
        slot = (slot + 1) & (capacity - 1);
      }
      if (slots_[slot] < 0) slots_[slot] = static_cast<int>(i);
    }
  }
  const Field* find(std::string_view key) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t slot = hash(key) & mask; slots_[slot] >= 0; slot = (slot + 1) & mask) {
      const Entry& e = entries_[static_cast<std::size_t>(slots_[slot])];
      if (e.key == key) return e.field;
    }
    return nullptr;
  }

 private:
  struct Entry {
    std::string_view key;
    const Field* field;
  };
  static std::size_t hash(std::string_view key) {
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (const char c : key) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return h;
  }
  std::vector<Entry> entries_;
  std::vector<int> slots_;
};

struct MessageType {
  const gp::Message* prototype = nullptr;
  const gp::Reflection* reflection = nullptr;
  KeyTable fields;
  // The fields in declaration order, which is the order libpg_query writes
  // them in: a key is usually found a few steps after the previous one.
  // Empty for Node (a oneof of hundreds of fields, one key each).
  std::vector<const Field*> ordered;
  const Field* location = nullptr;  // its "location" field, if any

  const Field* find(std::string_view key, std::size_t* cursor) const {
    for (std::size_t i = *cursor; i < ordered.size(); ++i) {
      if (ordered[i]->json_name() == key || ordered[i]->name() == key) {
        *cursor = i + 1;
        return ordered[i];
      }
    }
    return fields.find(key);
  }
};

const std::vector<MessageType>& message_types() {
  static const auto types = [] {
    const gp::FileDescriptor* file = pg_query::Node::descriptor()->file();
    std::vector<MessageType> out(static_cast<std::size_t>(file->message_type_count()));
    for (int m = 0; m < file->message_type_count(); ++m) {
      const gp::Descriptor* d = file->message_type(m);
      MessageType& type = out[static_cast<std::size_t>(m)];
      type.location = d->FindFieldByName("location");
      if (type.location != nullptr && type.location->cpp_type() != Field::CPPTYPE_INT32) {
        type.location = nullptr;
      }
      type.prototype = gp::MessageFactory::generated_factory()->GetPrototype(d);
      type.reflection = type.prototype->GetReflection();
      for (int f = 0; f < d->field_count(); ++f) {
        type.fields.add(d->field(f)->json_name(), d->field(f));
        type.fields.add(d->field(f)->name(), d->field(f));
        if (d->field_count() <= 64) type.ordered.push_back(d->field(f));
      }
      type.fields.build();
    }
    return out;
  }();
  return types;
}

// The table entry of a pg_query.proto message type, or null for any other.
const MessageType* message_type(const gp::Descriptor* d) {
  if (d->file() != pg_query::Node::descriptor()->file() || d->containing_type() != nullptr) {
    return nullptr;
  }
  return &message_types()[static_cast<std::size_t>(d->index())];
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

void append_utf8(std::string* out, std::uint32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xc0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xe0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class Reader {
 public:
  Reader(std::string_view in, const JsonTreeOptions& options) : in_(in), options_(options) {}

  JsonTreeStatus read_root(gp::Message* out) {
    skip_ws();
    const MessageType* type = message_type(out->GetDescriptor());
    if (type == nullptr) return fail();
    if (!read_object(out, *type, 0)) return status_ == JsonTreeStatus::kOk ? fail() : status_;
    skip_ws();
    return pos_ == in_.size() ? JsonTreeStatus::kOk : fail();
  }

 private:
  JsonTreeStatus fail(JsonTreeStatus status = JsonTreeStatus::kMalformed) {
    if (status_ == JsonTreeStatus::kOk) status_ = status;
    return status_;
  }
  bool failed(JsonTreeStatus status = JsonTreeStatus::kMalformed) {
    fail(status);
    return false;
  }

  void skip_ws() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\n' || in_[pos_] == '\t' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool consume(char c) {
    skip_ws();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // A JSON string at pos_. Without escapes the result points into the input;
  // otherwise it is decoded into *scratch.
  bool read_string(std::string_view* out, std::string* scratch) {
    if (!consume('"')) return failed();
    const std::size_t start = pos_;
    const char* p = in_.data() + pos_;
    const char* const end = in_.data() + in_.size();
    while (p != end && *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20) ++p;
    pos_ = static_cast<std::size_t>(p - in_.data());
    if (p != end && static_cast<unsigned char>(*p) < 0x20) return failed();
    if (pos_ >= in_.size()) return failed();
    if (in_[pos_] == '"') {
      *out = in_.substr(start, pos_ - start);
      ++pos_;
      return check_utf8(*out);
    }
    scratch->assign(in_.substr(start, pos_ - start));
    while (pos_ < in_.size() && in_[pos_] != '"') {
      const char c = in_[pos_++];
      if (static_cast<unsigned char>(c) < 0x20) return failed();
      if (c != '\\') {
        *scratch += c;
        continue;
      }
      if (pos_ >= in_.size()) return failed();
      const char e = in_[pos_++];
      if (const std::optional<char> control = control_escape(e)) {
        *scratch += *control;
        continue;
      }
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *scratch += e;
          break;
        case 'u': {
          std::uint32_t cp;
          if (!read_hex4(&cp)) return failed();
          if (cp >= 0xd800 && cp <= 0xdbff) {
            std::uint32_t low;
            if (pos_ + 2 > in_.size() || in_[pos_] != '\\' || in_[pos_ + 1] != 'u') return failed();
            pos_ += 2;
            if (!read_hex4(&low) || low < 0xdc00 || low > 0xdfff) return failed();
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return failed();
          }
          // A NUL cannot be in a statement (refused before parsing).
          if (cp == 0) return failed();
          append_utf8(scratch, cp);
          break;
        }
        default:
          return failed();
      }
    }
    if (pos_ >= in_.size()) return failed();
    ++pos_;
    *out = *scratch;
    return check_utf8(*out);
  }

  bool read_hex4(std::uint32_t* out) {
    if (pos_ + 4 > in_.size()) return false;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = in_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    *out = v;
    return true;
  }

  bool check_utf8(std::string_view s) {
    for (const char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80) {
        return valid_utf8(s) || failed(JsonTreeStatus::kInvalidUtf8);
      }
    }
    return true;
  }

  template <typename T>
  bool read_integer(T* out) {
    skip_ws();
    const char* begin = in_.data() + pos_;
    const char* end = in_.data() + in_.size();
    const auto [ptr, ec] = std::from_chars(begin, end, *out);
    if (ec != std::errc() || ptr == begin) return failed();
    pos_ += static_cast<std::size_t>(ptr - begin);
    return true;
  }

  bool read_bool(bool* out) {
    skip_ws();
    if (in_.substr(pos_, 4) == "true") {
      pos_ += 4;
      *out = true;
      return true;
    }
    if (in_.substr(pos_, 5) == "false") {
      pos_ += 5;
      *out = false;
      return true;
    }
    return failed();
  }

  bool read_object(gp::Message* msg, const MessageType& type, int depth) {
    if (depth > options_.max_depth) return failed(JsonTreeStatus::kTooDeep);
    if (!consume('{')) return failed();
    if (!consume('}')) {
      std::string scratch;
      std::size_t cursor = 0;
      do {
        std::string_view key;
        if (!read_string(&key, &scratch) || !consume(':')) return failed();
        const Field* field = type.find(key, &cursor);
        if (field == nullptr) return failed();
        if (options_.skip_locations && field == type.location) {
          std::int32_t position;
          if (!read_integer(&position)) return false;
          if (&type == range_var_type_ && options_.range_var_locations != nullptr) {
            options_.range_var_locations->emplace_back(msg, position);
          }
          continue;
        }
        if (!read_field(msg, type.reflection, field, depth)) return false;
      } while (consume(','));
      if (!consume('}')) return failed();
    }
    if (&type == integer_type_ && static_cast<pg_query::Integer*>(msg)->ival() == 0) {
      return failed(JsonTreeStatus::kAmbiguousInteger);
    }
    return true;
  }

  bool read_field(gp::Message* msg, const gp::Reflection* r, const Field* f, int depth) {
    if (!f->is_repeated()) {
      // Each field, and one member of a oneof, at most once.
      if (f->containing_oneof() != nullptr ? r->HasOneof(*msg, f->containing_oneof())
                                           : r->HasField(*msg, f)) {
        return failed();
      }
      return read_value(msg, r, f, depth, false);
    }
    if (r->FieldSize(*msg, f) != 0 || !consume('[')) return failed();
    if (consume(']')) return true;
    do {
      if (!read_value(msg, r, f, depth + 1, true)) return false;
    } while (consume(','));
    return consume(']') || failed();
  }

  bool read_value(gp::Message* msg, const gp::Reflection* r, const Field* f, int depth,
                  bool repeated) {
    switch (f->cpp_type()) {
      case Field::CPPTYPE_MESSAGE: {
        const MessageType* type = message_type(f->message_type());
        if (type == nullptr) return failed();
        // New from the cached prototype: Reflection::MutableMessage would
        // look the prototype up in the message factory every time.
        gp::Arena* arena = msg->GetArena();
        gp::Message* child = type->prototype->New(arena);
        if (arena == nullptr) {
          repeated ? r->AddAllocatedMessage(msg, f, child) : r->SetAllocatedMessage(msg, child, f);
        } else {
          repeated ? r->UnsafeArenaAddAllocatedMessage(msg, f, child)
                   : r->UnsafeArenaSetAllocatedMessage(msg, child, f);
        }
        return read_object(child, *type, depth + 1);
      }
      case Field::CPPTYPE_STRING: {
        std::string scratch;
        std::string_view s;
        if (!read_string(&s, &scratch)) return false;
        if (repeated) {
          r->AddString(msg, f, std::string(s));
        } else {
          r->SetString(msg, f, std::string(s));
        }
        return true;
      }
      case Field::CPPTYPE_INT32: {
        std::int32_t v;
        if (!read_integer(&v)) return false;
        repeated ? r->AddInt32(msg, f, v) : r->SetInt32(msg, f, v);
        return true;
      }
      case Field::CPPTYPE_UINT32: {
        std::uint32_t v;
        if (!read_integer(&v)) return false;
        repeated ? r->AddUInt32(msg, f, v) : r->SetUInt32(msg, f, v);
        return true;
      }
      case Field::CPPTYPE_INT64: {
        std::int64_t v;
        if (!read_integer(&v)) return false;
        repeated ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
        return true;
      }
      case Field::CPPTYPE_UINT64: {
        std::uint64_t v;
        if (!read_integer(&v)) return false;
        repeated ? r->AddUInt64(msg, f, v) : r->SetUInt64(msg, f, v);
        return true;
      }
      case Field::CPPTYPE_BOOL: {
        bool v;
        if (!read_bool(&v)) return false;
        repeated ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
        return true;
      }
      case Field::CPPTYPE_ENUM: {
        std::string scratch;
        std::string_view name;
        if (!read_string(&name, &scratch)) return false;
        const gp::EnumValueDescriptor* v = f->enum_type()->FindValueByName(std::string(name));
        if (v == nullptr) return failed();
        repeated ? r->AddEnumValue(msg, f, v->number()) : r->SetEnumValue(msg, f, v->number());
        return true;
      }
      default:
        return failed();  // pg_query.proto has no float or double fields
    }
  }

  std::string_view in_;
  const JsonTreeOptions& options_;
  const MessageType* const integer_type_ = message_type(pg_query::Integer::descriptor());
  const MessageType* const range_var_type_ = message_type(pg_query::RangeVar::descriptor());
  std::size_t pos_ = 0;
  JsonTreeStatus status_ = JsonTreeStatus::kOk;
};

}  // namespace

JsonTreeStatus read_json_tree(std::string_view json, gp::Message* out,
                              const JsonTreeOptions& options) {
  Reader reader(json, options);
  return reader.read_root(out);
}

}  // namespace tenantgate::rewriter
