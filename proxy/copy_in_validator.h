// Validates the rows a client sends with COPY ... FROM STDIN into a scoped
// table, without sockets: CopyData payloads in, the bytes to forward out.
//
// Rows are read in PostgreSQL's text or CSV COPY format ("COPY", File
// Formats, in the PostgreSQL documentation). Every row must carry the caller's
// value in each checked column; columns the client's column list left out are
// appended to every row with the caller's value. Binary COPY is not handled
// here (tenantgate refuses it for scoped tables).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/identity.h"

namespace tenantgate::proxy {

struct CopyInSpec {
  enum class Format { kText, kCsv };
  Format format = Format::kText;
  char delimiter = '\t';
  std::string null_string = "\\N";  // text default; CSV default is ""
  bool header = false;              // first line is passed on unchecked
  char quote = '"';                 // CSV only
  char escape = '"';                // CSV only

  struct Check {
    std::size_t column = 0;                             // 0-based position in the client's rows
    std::string expected;                               // the caller's value, canonical text
    policy::ValueType type = policy::ValueType::kText;  // row values are canonicalised first
    std::string name;                                   // column name, for the message
  };
  std::size_t columns = 0;  // fields every row must have
  std::vector<Check> checks;
  std::vector<std::string> appended_values;  // values appended to every row, in order
  std::string table;                         // for the message
  std::size_t max_row_bytes = 64u << 20;     // a longer row is refused, not buffered
};

class CopyInValidator {
 public:
  explicit CopyInValidator(CopyInSpec spec);

  // Takes the next CopyData payload. Appends to `out` the data to forward (whole
  // rows only; a partial row waits for the next payload). Returns the refusal
  // message when a row breaks the policy; nothing of that row is appended.
  [[nodiscard]] std::optional<std::string> feed(std::string_view data, std::string& out);

  // At CopyDone: a last row without a line end is checked and appended.
  [[nodiscard]] std::optional<std::string> finish(std::string& out);

 private:
  // Length of the first complete row in buf (including its line end), or 0.
  [[nodiscard]] std::size_t complete_row_length(std::string_view buf) const;
  [[nodiscard]] std::optional<std::string> check_row(std::string_view row, std::string& out);
  [[nodiscard]] std::vector<std::optional<std::string>> split_text(std::string_view line) const;
  [[nodiscard]] std::vector<std::optional<std::string>> split_csv(std::string_view line) const;
  [[nodiscard]] std::string encode_appended(const std::string& value) const;
  [[nodiscard]] bool has_bare_carriage_return(std::string_view line) const;
  [[nodiscard]] bool has_end_marker_inside(std::string_view line) const;

  CopyInSpec spec_;
  std::string buf_;
  bool header_pending_;
  bool ended_ = false;  // saw the "\." end-of-data line
  std::string appended_;
};

}  // namespace tenantgate::proxy
