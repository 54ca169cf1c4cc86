// Tokens of a query string as PostgreSQL's own scanner cuts them
// (pg_query_scan), with the few questions the dialect layer asks of them:
// which keyword a token is, where statements and parentheses begin and end.
//
// Thread-safety: plain values; scan_tokens may run on any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {

struct SqlToken {
  std::size_t begin = 0;  // byte offsets into the scanned text
  std::size_t end = 0;
  int token = 0;         // pg_query::Token value (ASCII code for one-character tokens)
  int keyword_kind = 0;  // pg_query::KeywordKind: 0 none, 1 unreserved ... 4 reserved
};

// The tokens of `sql`, comments left out. A scanner error (an unterminated
// string, say) is a 42601 refusal.
[[nodiscard]] std::optional<Refusal> scan_tokens(const std::string& sql,
                                                 std::vector<SqlToken>* out);

class TokenView {
 public:
  TokenView(std::string_view sql, const std::vector<SqlToken>& tokens)
      : sql_(sql), tokens_(tokens) {}

  [[nodiscard]] std::size_t size() const { return tokens_.size(); }
  [[nodiscard]] const SqlToken& at(std::size_t i) const { return tokens_[i]; }
  [[nodiscard]] std::string_view text(std::size_t i) const {
    return sql_.substr(tokens_[i].begin, tokens_[i].end - tokens_[i].begin);
  }
  // The text from token i's start to token j's end (i <= j).
  [[nodiscard]] std::string_view span(std::size_t i, std::size_t j) const {
    return sql_.substr(tokens_[i].begin, tokens_[j].end - tokens_[i].begin);
  }
  // Token i is the unquoted word `word` (upper case), keyword or not.
  [[nodiscard]] bool is(std::size_t i, std::string_view word) const;
  [[nodiscard]] bool is_char(std::size_t i, char c) const;
  // An identifier, or a keyword PostgreSQL accepts as a table or column name.
  [[nodiscard]] bool is_name(std::size_t i) const;
  [[nodiscard]] bool is_constant(std::size_t i) const;  // string or number
  [[nodiscard]] bool is_param(std::size_t i) const;
  // The name as PostgreSQL stores it: unquoted folded to lower case,
  // "quoted" verbatim without quotes.
  [[nodiscard]] std::string folded(std::size_t i) const;

 private:
  std::string_view sql_;
  const std::vector<SqlToken>& tokens_;
};

// The statements of a token list: [first, last) token ranges split at the
// semicolons outside parentheses (empty statements included, so that two
// texts with the same statements split the same way).
struct TokenRange {
  std::size_t first = 0;
  std::size_t last = 0;
};
[[nodiscard]] std::vector<TokenRange> split_statements(const TokenView& tokens);

}  // namespace tenantgate::rewriter
