// Encoding of the caller-statement answers.

#include "proxy/caller_reply.h"

#include <cstdint>

namespace tenantgate::proxy {

namespace {

constexpr int32_t kTextOid = 25;

void put32(std::string& out, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
}

void put16(std::string& out, int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  out.push_back(static_cast<char>((u >> 8) & 0xff));
  out.push_back(static_cast<char>(u & 0xff));
}

std::string framed(char type, const std::string& body) {
  std::string out(1, type);
  put32(out, static_cast<int32_t>(body.size() + 4));
  return out + body;
}

}  // namespace

std::string command_complete(std::string_view tag) {
  std::string body(tag);
  body.push_back('\0');
  return framed('C', body);
}

std::string show_result(std::string_view column, const std::optional<std::string>& value) {
  std::string desc;
  put16(desc, 1);
  desc.append(column);
  desc.push_back('\0');
  put32(desc, 0);         // table OID
  put16(desc, 0);         // column number
  put32(desc, kTextOid);  // type
  put16(desc, -1);        // type size: variable
  put32(desc, -1);        // type modifier
  put16(desc, 0);         // text format
  std::string row;
  put16(row, 1);
  if (value) {
    put32(row, static_cast<int32_t>(value->size()));
    row += *value;
  } else {
    put32(row, -1);
  }
  return framed('T', desc) + framed('D', row) + command_complete("SHOW");
}

}  // namespace tenantgate::proxy
