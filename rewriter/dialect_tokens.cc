#include "rewriter/dialect_tokens.h"

#include <pg_query.h>

#include "pg_query.pb.h"

namespace tenantgate::rewriter {

std::optional<Refusal> scan_tokens(const std::string& sql, std::vector<SqlToken>* out) {
  PgQueryScanResult result = pg_query_scan(sql.c_str());
  if (result.error != nullptr) {
    Refusal refusal{"42601", std::string("syntax error: ") + result.error->message};
    pg_query_free_scan_result(result);
    return refusal;
  }
  pg_query::ScanResult scan;
  const bool parsed = scan.ParseFromArray(result.pbuf.data, static_cast<int>(result.pbuf.len));
  pg_query_free_scan_result(result);
  if (!parsed) return Refusal{"XX000", "internal error: unreadable scanner output"};
  out->clear();
  out->reserve(static_cast<std::size_t>(scan.tokens_size()));
  for (const pg_query::ScanToken& t : scan.tokens()) {
    if (t.token() == pg_query::SQL_COMMENT || t.token() == pg_query::C_COMMENT) continue;
    out->push_back(SqlToken{static_cast<std::size_t>(t.start()), static_cast<std::size_t>(t.end()),
                            static_cast<int>(t.token()), static_cast<int>(t.keyword_kind())});
  }
  return std::nullopt;
}

bool TokenView::is(std::size_t i, std::string_view word) const {
  if (i >= tokens_.size()) return false;
  const std::string_view t = text(i);
  if (t.size() != word.size()) return false;
  for (std::size_t k = 0; k < t.size(); ++k) {
    char c = t[k];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != word[k]) return false;
  }
  return true;
}

bool TokenView::is_char(std::size_t i, char c) const {
  return i < tokens_.size() && text(i).size() == 1 && text(i)[0] == c &&
         tokens_[i].token != pg_query::SCONST;
}

bool TokenView::is_name(std::size_t i) const {
  if (i >= tokens_.size()) return false;
  const SqlToken& t = tokens_[i];
  if (t.token == pg_query::IDENT) return true;
  return t.keyword_kind == pg_query::UNRESERVED_KEYWORD ||
         t.keyword_kind == pg_query::COL_NAME_KEYWORD;
}

bool TokenView::is_constant(std::size_t i) const {
  if (i >= tokens_.size()) return false;
  const int t = tokens_[i].token;
  return t == pg_query::SCONST || t == pg_query::ICONST || t == pg_query::FCONST ||
         t == pg_query::USCONST;
}

bool TokenView::is_param(std::size_t i) const {
  return i < tokens_.size() && tokens_[i].token == pg_query::PARAM;
}

std::string TokenView::folded(std::size_t i) const {
  const std::string_view t = text(i);
  if (t.size() >= 2 && t.front() == '"' && t.back() == '"') {
    std::string out;
    for (std::size_t k = 1; k + 1 < t.size(); ++k) {
      out += t[k];
      if (t[k] == '"') ++k;  // "" inside a quoted name is one quote
    }
    return out;
  }
  std::string out(t);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<TokenRange> split_statements(const TokenView& tokens) {
  std::vector<TokenRange> out;
  std::size_t first = 0;
  int depth = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens.is_char(i, '(') || tokens.is_char(i, '[')) ++depth;
    if ((tokens.is_char(i, ')') || tokens.is_char(i, ']')) && depth > 0) --depth;
    if (depth == 0 && tokens.is_char(i, ';')) {
      out.push_back({first, i});
      first = i + 1;
    }
  }
  out.push_back({first, tokens.size()});
  return out;
}

}  // namespace tenantgate::rewriter
