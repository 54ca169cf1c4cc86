#include "proxy/messages.h"

#include <algorithm>
#include <utility>

#include "proxy/message_io.h"

namespace tenantgate::proxy {
namespace {

std::string error_or_notice(char type, std::string_view severity, std::string_view sqlstate,
                            std::string_view message, std::string_view detail) {
  MessageWriter w(type);
  w.u8('S').cstr(severity);
  w.u8('V').cstr(severity);
  w.u8('C').cstr(sqlstate);
  w.u8('M').cstr(message);
  if (!detail.empty()) w.u8('D').cstr(detail);
  w.u8(0);
  return std::move(w).finish();
}

std::string authentication(int32_t code, std::string_view data = {}) {
  MessageWriter w('R');
  w.i32(code).bytes(data);
  return std::move(w).finish();
}

// Counts of fields are Int16 on the wire but PostgreSQL reads them unsigned
// (pq_getmsgint(msg, 2)), which is what allows up to 65535 parameters.
std::optional<std::size_t> read_count(MessageReader& r) {
  auto n = r.i16();
  if (!n) return std::nullopt;
  return static_cast<uint16_t>(*n);
}

// Format codes: 0 text, 1 binary. PostgreSQL refuses others when it sets up
// the portal; refusing them here keeps the proxy from guessing.
bool read_formats(MessageReader& r, std::vector<int16_t>& out) {
  auto n = read_count(r);
  if (!n) return false;
  out.reserve(std::min<std::size_t>(*n, r.remaining() / 2));
  for (std::size_t i = 0; i < *n; ++i) {
    auto f = r.i16();
    if (!f || (*f != 0 && *f != 1)) return false;
    out.push_back(*f);
  }
  return true;
}

}  // namespace

std::string error_response(std::string_view severity, std::string_view sqlstate,
                           std::string_view message, std::string_view detail) {
  return error_or_notice('E', severity, sqlstate, message, detail);
}

std::string notice_response(std::string_view severity, std::string_view sqlstate,
                            std::string_view message) {
  return error_or_notice('N', severity, sqlstate, message, {});
}

std::string ready_for_query(char status) {
  MessageWriter w('Z');
  w.u8(static_cast<uint8_t>(status));
  return std::move(w).finish();
}

std::string authentication_ok() { return authentication(0); }
std::string authentication_cleartext() { return authentication(3); }
std::string authentication_md5(std::string_view salt4) {
  return authentication(5, salt4.substr(0, 4));
}

std::string authentication_sasl(const std::vector<std::string>& mechanisms) {
  MessageWriter w('R');
  w.i32(10);
  for (const auto& m : mechanisms) w.cstr(m);
  w.u8(0);
  return std::move(w).finish();
}

std::string authentication_sasl_continue(std::string_view data) { return authentication(11, data); }
std::string authentication_sasl_final(std::string_view data) { return authentication(12, data); }

std::string parameter_status(std::string_view name, std::string_view value) {
  MessageWriter w('S');
  w.cstr(name).cstr(value);
  return std::move(w).finish();
}

std::string backend_key_data(int32_t pid, int32_t key) {
  MessageWriter w('K');
  w.i32(pid).i32(key);
  return std::move(w).finish();
}

std::string negotiate_protocol_version(int32_t newest_minor,
                                       const std::vector<std::string>& unrecognized) {
  MessageWriter w('v');
  w.i32(newest_minor).i32(static_cast<int32_t>(unrecognized.size()));
  for (const auto& name : unrecognized) w.cstr(name);
  return std::move(w).finish();
}

std::string password_message(std::string_view password) {
  MessageWriter w('p');
  w.cstr(password);
  return std::move(w).finish();
}

std::string sasl_initial_response(std::string_view mechanism, std::string_view data) {
  MessageWriter w('p');
  w.cstr(mechanism).i32(static_cast<int32_t>(data.size())).bytes(data);
  return std::move(w).finish();
}

std::string sasl_response(std::string_view data) {
  MessageWriter w('p');
  w.bytes(data);
  return std::move(w).finish();
}

std::string query_message(std::string_view sql) {
  std::string out;
  append_query_message(out, sql);
  return out;
}

void append_query_message(std::string& out, std::string_view sql) {
  MessageWriter w('Q', std::move(out));
  w.cstr(sql);
  out = std::move(w).finish();
}

std::string terminate_message() { return MessageWriter('X').finish(); }

std::optional<std::string> redact_row_detail(std::string_view body) {
  MessageReader r(body);
  std::vector<std::pair<char, std::string_view>> fields;
  bool exclusion = false;
  bool failing_row = false;
  for (;;) {
    auto code = r.u8();
    if (!code) return std::nullopt;
    if (*code == 0) break;
    auto value = r.cstr();
    if (!value) return std::nullopt;
    if (*code == 'C' && *value == "23P01") exclusion = true;
    if (*code == 'D' && value->starts_with("Failing row contains")) failing_row = true;
    fields.emplace_back(static_cast<char>(*code), *value);
  }
  if ((!exclusion && !failing_row) || !r.at_end()) return std::nullopt;
  std::string out_body;
  for (const auto& [code, value] : fields) {
    // PostgreSQL leaves the failing row out when the caller may not see
    // every column of it (row-level security, column privileges).
    if (code == 'D' && failing_row) continue;
    out_body += code;
    out_body += code == 'D' ? std::string_view("Key conflicts with existing key.") : value;
    out_body += '\0';
  }
  out_body += '\0';
  std::string out;
  out += 'E';
  const auto length = static_cast<uint32_t>(out_body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((length >> shift) & 0xff);
  out += out_body;
  return out;
}

std::optional<ErrorFields> parse_error_fields(std::string_view body) {
  MessageReader r(body);
  ErrorFields out;
  bool have_s = false, have_v = false, have_c = false, have_m = false;
  std::string severity_s;
  for (;;) {
    auto code = r.u8();
    if (!code) return std::nullopt;  // no terminating NUL
    if (*code == 0) break;
    auto value = r.cstr();
    if (!value) return std::nullopt;
    switch (*code) {
      case 'S':
        have_s = true;
        severity_s.assign(*value);
        break;
      case 'V':
        have_v = true;
        out.severity.assign(*value);
        break;
      case 'C':
        have_c = true;
        out.sqlstate.assign(*value);
        break;
      case 'M':
        have_m = true;
        out.message.assign(*value);
        break;
      case 'D':
        out.detail.assign(*value);
        break;
      default:
        break;  // other fields are legal and not needed here
    }
  }
  if (!r.at_end()) return std::nullopt;
  // The protocol says S, C and M are always present; V since 9.6.
  if (!(have_s || have_v) || !have_c || !have_m) return std::nullopt;
  if (!have_v) out.severity = std::move(severity_s);
  return out;
}

std::optional<AuthRequest> parse_auth_request(std::string_view body) {
  MessageReader r(body);
  auto code = r.i32();
  if (!code) return std::nullopt;
  AuthRequest out;
  out.code = *code;
  switch (*code) {
    case 0:
    case 3:
      if (!r.at_end()) return std::nullopt;
      return out;
    case 5: {
      auto salt = r.bytes(4);
      if (!salt || !r.at_end()) return std::nullopt;
      out.data = *salt;
      return out;
    }
    case 10: {
      out.data = body.substr(4);
      for (;;) {
        auto m = r.cstr();
        if (!m) return std::nullopt;
        if (m->empty()) break;
        out.mechanisms.push_back(*m);
      }
      if (!r.at_end() || out.mechanisms.empty()) return std::nullopt;
      return out;
    }
    default:
      // 11/12 carry SASL data; other methods (Kerberos, GSS, SSPI) are returned
      // with their raw data so that the caller can name what it refuses.
      out.data = body.substr(4);
      return out;
  }
}

std::optional<BackendKey> parse_backend_key_data(std::string_view body) {
  MessageReader r(body);
  auto pid = r.i32();
  auto key = r.i32();
  if (!pid || !key || !r.at_end()) return std::nullopt;
  return BackendKey{*pid, *key};
}

std::optional<char> parse_ready_for_query(std::string_view body) {
  if (body.size() != 1) return std::nullopt;
  const char s = body[0];
  if (s != 'I' && s != 'T' && s != 'E') return std::nullopt;
  return s;
}

std::optional<ParameterStatus> parse_parameter_status(std::string_view body) {
  MessageReader r(body);
  auto name = r.cstr();
  auto value = r.cstr();
  if (!name || !value || !r.at_end() || name->empty()) return std::nullopt;
  return ParameterStatus{*name, *value};
}

std::optional<SaslInitial> parse_sasl_initial_response(std::string_view body) {
  MessageReader r(body);
  auto mechanism = r.cstr();
  auto length = r.i32();
  if (!mechanism || !length) return std::nullopt;
  SaslInitial out;
  out.mechanism = *mechanism;
  if (*length == -1) {
    if (!r.at_end()) return std::nullopt;
    return out;
  }
  if (*length < 0) return std::nullopt;
  auto data = r.bytes(static_cast<std::size_t>(*length));
  if (!data || !r.at_end()) return std::nullopt;
  out.data = *data;
  return out;
}

std::optional<std::string_view> parse_password_message(std::string_view body) {
  MessageReader r(body);
  auto password = r.cstr();
  if (!password || !r.at_end()) return std::nullopt;
  return password;
}

std::optional<std::string_view> parse_query(std::string_view body) {
  // cstr() stops at the first NUL, so an embedded NUL leaves bytes behind.
  MessageReader r(body);
  auto sql = r.cstr();
  if (!sql || !r.at_end()) return std::nullopt;
  return sql;
}

std::optional<ParseMessage> parse_parse(std::string_view body) {
  MessageReader r(body);
  ParseMessage out;
  auto statement = r.cstr();
  auto query = r.cstr();
  auto n = read_count(r);
  if (!statement || !query || !n) return std::nullopt;
  out.statement = *statement;
  out.query = *query;
  if (r.remaining() != *n * 4) return std::nullopt;
  out.param_types.reserve(*n);
  for (std::size_t i = 0; i < *n; ++i) out.param_types.push_back(*r.i32());
  if (!r.at_end()) return std::nullopt;
  return out;
}

std::string encode_parse(std::string_view statement, std::string_view query,
                         const std::vector<int32_t>& param_types) {
  std::string out;
  append_parse(out, statement, query, param_types);
  return out;
}

void append_parse(std::string& out, std::string_view statement, std::string_view query,
                  const std::vector<int32_t>& param_types) {
  MessageWriter w('P', std::move(out));
  w.cstr(statement).cstr(query);
  w.i16(static_cast<int16_t>(static_cast<uint16_t>(param_types.size())));
  for (int32_t t : param_types) w.i32(t);
  out = std::move(w).finish();
}

std::optional<BindMessage> parse_bind(std::string_view body) {
  BindMessage out;
  if (!parse_bind(body, out)) return std::nullopt;
  return out;
}

bool parse_bind(std::string_view body, BindMessage& out) {
  MessageReader r(body);
  out.param_formats.clear();
  out.params.clear();
  out.result_formats.clear();
  auto portal = r.cstr();
  auto statement = r.cstr();
  if (!portal || !statement) return false;
  out.portal = *portal;
  out.statement = *statement;
  if (!read_formats(r, out.param_formats)) return false;
  auto n = read_count(r);
  if (!n) return false;
  // As PostgreSQL: zero format codes (all text), one (applies to all) or one per parameter.
  if (out.param_formats.size() > 1 && out.param_formats.size() != *n) return false;
  out.params.reserve(std::min<std::size_t>(*n, r.remaining() / 4));
  for (std::size_t i = 0; i < *n; ++i) {
    auto length = r.i32();
    if (!length) return false;
    if (*length == -1) {
      out.params.emplace_back(std::nullopt);
      continue;
    }
    if (*length < 0) return false;
    auto value = r.bytes(static_cast<std::size_t>(*length));
    if (!value) return false;
    out.params.emplace_back(*value);
  }
  return read_formats(r, out.result_formats) && r.at_end();
}

std::optional<DescribeOrClose> parse_describe_or_close(std::string_view body) {
  MessageReader r(body);
  auto kind = r.u8();
  auto name = r.cstr();
  if (!kind || !name || !r.at_end()) return std::nullopt;
  if (*kind != 'S' && *kind != 'P') return std::nullopt;
  return DescribeOrClose{static_cast<char>(*kind), *name};
}

}  // namespace tenantgate::proxy
