#include "proxy/copy_in_validator.h"

#include <fmt/format.h>

#include <optional>

#include "rewriter/escapes.h"

namespace tenantgate::proxy {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the backslash escapes of the text COPY format.
std::string decode_text_field(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 == raw.size()) {
      out += c;
      continue;
    }
    char e = raw[++i];
    if (const std::optional<char> control = rewriter::control_escape(e)) {
      out += *control;
      continue;
    }
    switch (e) {
      case 'v':
        out += '\v';
        break;
      case 'x': {
        int value = 0, digits = 0;
        while (digits < 2 && i + 1 < raw.size() && hex_value(raw[i + 1]) >= 0) {
          value = value * 16 + hex_value(raw[++i]);
          ++digits;
        }
        if (digits == 0) {
          out += 'x';
        } else {
          out += static_cast<char>(value);
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int value = e - '0', digits = 1;
          while (digits < 3 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7') {
            value = value * 8 + (raw[++i] - '0');
            ++digits;
          }
          out += static_cast<char>(value & 0xff);
        } else {
          out += e;
        }
    }
  }
  return out;
}

}  // namespace

bool CopyInValidator::has_bare_carriage_return(std::string_view line) const {
  if (spec_.format == CopyInSpec::Format::kText) return line.find('\r') != std::string_view::npos;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == spec_.escape && spec_.escape != spec_.quote && i + 1 < line.size() &&
          (line[i + 1] == spec_.quote || line[i + 1] == spec_.escape)) {
        ++i;
      } else if (c == spec_.quote) {
        quoted = false;
      }
    } else if (c == spec_.quote) {
      quoted = true;
    } else if (c == '\r') {
      return true;
    }
  }
  return false;
}

bool CopyInValidator::has_end_marker_inside(std::string_view line) const {
  for (std::size_t i = 0; i + 1 < line.size(); ++i) {
    if (line[i] != '\\') continue;
    if (line[i + 1] == '.') return true;
    ++i;  // an escaped character, even a backslash, is data
  }
  return false;
}

CopyInValidator::CopyInValidator(CopyInSpec spec)
    : spec_(std::move(spec)), header_pending_(spec_.header) {
  for (const auto& value : spec_.appended_values) {
    appended_ += spec_.delimiter;
    appended_ += encode_appended(value);
  }
}

std::string CopyInValidator::encode_appended(const std::string& value) const {
  std::string out;
  if (spec_.format == CopyInSpec::Format::kCsv) {
    // Always quoted: a quoted value is never read as NULL.
    out += spec_.quote;
    for (char c : value) {
      if (c == spec_.quote || c == spec_.escape) out += spec_.escape;
      out += c;
    }
    out += spec_.quote;
    return out;
  }
  for (char c : value) {
    if (c == '\\' || c == spec_.delimiter) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

std::size_t CopyInValidator::complete_row_length(std::string_view buf) const {
  if (spec_.format == CopyInSpec::Format::kText) {
    for (std::size_t i = 0; i < buf.size(); ++i) {
      if (buf[i] == '\\') {
        ++i;  // an escaped character, even a line feed, is data
      } else if (buf[i] == '\n') {
        return i + 1;
      }
    }
    return 0;
  }
  bool quoted = false;
  for (std::size_t i = 0; i < buf.size(); ++i) {
    char c = buf[i];
    if (quoted) {
      if (c == spec_.escape && spec_.escape != spec_.quote && i + 1 < buf.size() &&
          (buf[i + 1] == spec_.quote || buf[i + 1] == spec_.escape)) {
        ++i;
      } else if (c == spec_.quote) {
        quoted = false;  // a doubled quote re-enters on the next character
      }
    } else if (c == spec_.quote) {
      quoted = true;
    } else if (c == '\n') {
      return i + 1;
    }
  }
  return 0;
}

std::vector<std::optional<std::string>> CopyInValidator::split_text(std::string_view line) const {
  std::vector<std::optional<std::string>> fields;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size() && line[i] == '\\') {
      ++i;
      continue;
    }
    if (i == line.size() || line[i] == spec_.delimiter) {
      std::string_view raw = line.substr(start, i - start);
      if (raw == spec_.null_string) {
        fields.emplace_back(std::nullopt);
      } else {
        fields.emplace_back(decode_text_field(raw));
      }
      start = i + 1;
    }
  }
  return fields;
}

std::vector<std::optional<std::string>> CopyInValidator::split_csv(std::string_view line) const {
  std::vector<std::optional<std::string>> fields;
  std::string value;
  std::string raw;  // the field as written, for the NULL comparison
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || (!quoted && line[i] == spec_.delimiter)) {
      if (!was_quoted && raw == spec_.null_string) {
        fields.emplace_back(std::nullopt);
      } else {
        fields.emplace_back(value);
      }
      value.clear();
      raw.clear();
      was_quoted = false;
      continue;
    }
    char c = line[i];
    raw += c;
    if (quoted) {
      if (c == spec_.escape && i + 1 < line.size() &&
          (line[i + 1] == spec_.quote || line[i + 1] == spec_.escape) &&
          !(spec_.escape == spec_.quote && line[i + 1] != spec_.quote)) {
        value += line[++i];
        raw += line[i];
      } else if (c == spec_.quote) {
        quoted = false;
      } else {
        value += c;
      }
    } else if (c == spec_.quote) {
      quoted = true;
      was_quoted = true;
    } else {
      value += c;
    }
  }
  return fields;
}

std::optional<std::string> CopyInValidator::check_row(std::string_view row, std::string& out) {
  std::string_view line = row;
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  // PostgreSQL takes a bare carriage return as a line end when the first line
  // ends with one; tenantgate splits rows at "\n" only. So no line, the
  // header included, may hold a carriage return outside a quoted CSV field:
  // the server then reads exactly the rows checked here (or fails the COPY).
  if (has_bare_carriage_return(line)) {
    return fmt::format(
        "COPY into \"{}\": carriage returns outside quoted CSV values are not "
        "supported (use \\r in text format)",
        spec_.table);
  }
  if (line == "\\.") {
    ended_ = true;
    out.append(row);
    return std::nullopt;
  }
  if (spec_.format == CopyInSpec::Format::kText && has_end_marker_inside(line)) {
    // PostgreSQL 15 ends the data at "\." anywhere in a line and keeps what
    // precedes it as the last row: a different row than the one read here.
    return fmt::format("COPY into \"{}\": \"\\.\" may only stand alone on its line", spec_.table);
  }
  if (header_pending_) {
    header_pending_ = false;
    out.append(row);
    return std::nullopt;
  }
  auto fields = spec_.format == CopyInSpec::Format::kText ? split_text(line) : split_csv(line);
  if (fields.size() != spec_.columns) {
    return fmt::format("COPY into \"{}\": a row has {} columns, expected {}", spec_.table,
                       fields.size(), spec_.columns);
  }
  for (const auto& check : spec_.checks) {
    const auto& field = fields[check.column];
    if (!field) {
      return fmt::format(
          "new row violates tenantgate policy for table \"{}\": column \"{}\" is "
          "NULL",
          spec_.table, check.name);
    }
    auto canonical = policy::canonical_value(check.type, *field);
    if (!canonical || *canonical != check.expected) {
      return fmt::format(
          "new row violates tenantgate policy for table \"{}\": column \"{}\" is "
          "not the caller's value",
          spec_.table, check.name);
    }
  }
  if (appended_.empty()) {
    out.append(row);
  } else {
    out.append(line);
    out += appended_;
    out += '\n';
  }
  return std::nullopt;
}

std::optional<std::string> CopyInValidator::feed(std::string_view data, std::string& out) {
  if (ended_) return std::nullopt;  // PostgreSQL ignores what follows "\."
  buf_.append(data);
  std::size_t consumed = 0;
  for (;;) {
    std::string_view rest(buf_.data() + consumed, buf_.size() - consumed);
    const std::size_t n = complete_row_length(rest);
    if (n == 0) break;
    if (auto error = check_row(rest.substr(0, n), out)) return error;
    consumed += n;
    if (ended_) {
      buf_.clear();
      return std::nullopt;
    }
  }
  buf_.erase(0, consumed);
  if (buf_.size() > spec_.max_row_bytes) {
    return fmt::format("COPY into \"{}\": a row is longer than {} bytes", spec_.table,
                       spec_.max_row_bytes);
  }
  return std::nullopt;
}

std::optional<std::string> CopyInValidator::finish(std::string& out) {
  if (ended_ || buf_.empty()) return std::nullopt;
  std::string row = std::move(buf_);
  buf_.clear();
  return check_row(row, out);
}

}  // namespace tenantgate::proxy
