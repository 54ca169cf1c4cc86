#include "rewriter/literal_scanner.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>

#include "rewriter/escapes.h"

namespace tenantgate::rewriter {
namespace {

// Character classes of scan.l, one table lookup per byte:
// ident_start [A-Za-z\200-\377_], ident_cont adds [0-9\$], space [ \t\n\r\f]
// (PostgreSQL 15 does not count \v as a space), op_chars
// [\~\!\@\#\^\&\|\`\?\+\-\*\/\%\<\>\=].
enum : unsigned char { kIdentStart = 1, kDigit = 2, kDollar = 4, kSpace = 8, kOpChar = 16 };

constexpr std::array<unsigned char, 256> make_classes() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80) {
      t[c] |= kIdentStart;
    }
    if (c >= '0' && c <= '9') t[c] |= kDigit;
  }
  t['$'] |= kDollar;
  for (const char c : std::string_view(" \t\n\r\f")) t[static_cast<unsigned char>(c)] |= kSpace;
  for (const char c : std::string_view("~!@#^&|`?+-*/%<>=")) {
    t[static_cast<unsigned char>(c)] |= kOpChar;
  }
  return t;
}
constexpr std::array<unsigned char, 256> kClasses = make_classes();

bool is_ident_start(unsigned char c) { return (kClasses[c] & kIdentStart) != 0; }
bool is_digit(unsigned char c) { return (kClasses[c] & kDigit) != 0; }
bool is_ident_cont(unsigned char c) {
  return (kClasses[c] & (kIdentStart | kDigit | kDollar)) != 0;
}
bool is_space(unsigned char c) { return (kClasses[c] & kSpace) != 0; }
bool is_op_char(unsigned char c) { return (kClasses[c] & kOpChar) != 0; }

bool equals_lower(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

template <std::size_t N>
bool is_one_of(std::string_view word, const std::array<std::string_view, N>& lowers) {
  for (std::string_view k : lowers) {
    if (equals_lower(word, k)) return true;
  }
  return false;
}

constexpr std::array<std::string_view, 7> kShapeableStatements = {
    "select", "insert", "update", "delete", "with", "table", "values"};

constexpr std::array<std::string_view, 17> kOperandKeywords = {
    "select", "where", "and",     "or",    "not",    "when",      "then",   "else", "in",
    "like",   "ilike", "between", "limit", "offset", "returning", "having", "on"};

bool is_string_kind(TokenKind k) {
  return k == TokenKind::kString || k == TokenKind::kEscapeString || k == TokenKind::kBitString ||
         k == TokenKind::kUnicodeString || k == TokenKind::kDollarString;
}

// Whether a constant after `prev` is an operand of an expression.
bool starts_operand(const Token& prev, std::string_view sql) {
  const std::string_view text = sql.substr(prev.begin, prev.end - prev.begin);
  switch (prev.kind) {
    case TokenKind::kOperator:
      // In the grammar every operator token is followed by an a_expr (or is
      // `*` in a target list, where no constant may follow).
      return true;
    case TokenKind::kPunctuation:
      return text == "(" || text == "," || text == "[";
    case TokenKind::kIdentifier:
      return is_one_of(text, kOperandKeywords);
    default:
      return false;
  }
}

// An E'' string whose escapes PostgreSQL always accepts and that cannot spell
// an identity marker once unescaped (the exact path refuses those).
bool simple_escape_string(std::string_view token) {
  std::string unescaped;
  unescaped.reserve(token.size());
  for (std::size_t i = 2; i + 1 < token.size(); ++i) {
    const char c = token[i];
    if (c == '\\') {
      const char e = token[i + 1];
      if ((e >= '0' && e <= '7') || e == 'x' || e == 'u' || e == 'U') return false;
      unescaped += e;
      ++i;
    } else {
      unescaped += c;
    }
  }
  return unescaped.find("tg_tenant_value") == std::string::npos &&
         unescaped.find("tg_user_value") == std::string::npos;
}

}  // namespace

SqlScanner::Status SqlScanner::give_up() {
  gave_up_ = true;
  done_ = true;
  return Status::kGiveUp;
}

bool SqlScanner::skip_trivia() {
  const std::size_t n = s_.size();
  while (pos_ < n) {
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (is_space(c)) {
      ++pos_;
    } else if (c == '-' && pos_ + 1 < n && s_[pos_ + 1] == '-') {
      while (pos_ < n && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
    } else if (c == '/' && pos_ + 1 < n && s_[pos_ + 1] == '*') {
      std::size_t depth = 1;
      pos_ += 2;
      while (depth > 0) {
        if (pos_ + 1 >= n) return false;  // unterminated
        if (s_[pos_] == '/' && s_[pos_ + 1] == '*') {
          ++depth;
          pos_ += 2;
        } else if (s_[pos_] == '*' && s_[pos_ + 1] == '/') {
          --depth;
          pos_ += 2;
        } else {
          ++pos_;
        }
      }
    } else {
      return true;
    }
  }
  return true;
}

// Index just past the quoted section whose opening quote is at `i`, with
// doubled quotes (and backslash escapes when `backslash`); npos when
// unterminated.
std::size_t SqlScanner::quoted_end(std::size_t i, char quote, bool backslash) const {
  const std::size_t n = s_.size();
  ++i;
  while (i < n) {
    const char c = s_[i];
    if (backslash && c == '\\') {
      if (i + 1 >= n) return std::string_view::npos;
      i += 2;
    } else if (c == quote) {
      if (i + 1 < n && s_[i + 1] == quote) {
        i += 2;
      } else {
        return i + 1;
      }
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

// scan.l: integer, decimal, real; decimalfail (1..2), realfail (1e, 1e+) and
// the *_junk rules (123abc, 0x1F) are given up on.
SqlScanner::Status SqlScanner::number(Token* out) {
  const std::size_t n = s_.size();
  std::size_t i = pos_;
  while (i < n && is_digit(static_cast<unsigned char>(s_[i]))) ++i;
  if (i < n && s_[i] == '.') {
    if (i + 1 < n && s_[i + 1] == '.') return give_up();
    ++i;
    while (i < n && is_digit(static_cast<unsigned char>(s_[i]))) ++i;
  }
  if (i < n && (s_[i] == 'e' || s_[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < n && (s_[j] == '+' || s_[j] == '-')) ++j;
    if (j >= n || !is_digit(static_cast<unsigned char>(s_[j]))) return give_up();
    while (j < n && is_digit(static_cast<unsigned char>(s_[j]))) ++j;
    i = j;
  }
  if (i < n && (is_ident_cont(static_cast<unsigned char>(s_[i])) || s_[i] == '.')) {
    return give_up();
  }
  *out = Token{TokenKind::kNumber, pos_, i};
  pos_ = i;
  return Status::kToken;
}

// scan.l's {operator} rule: the longest run of op_chars, cut before an
// embedded comment start, and without trailing + or - unless the operator
// holds one of ~ ! @ # ^ & | ` ? % (so that `=-1` is `=` then `-1`).
SqlScanner::Status SqlScanner::operator_token(Token* out) {
  const std::size_t n = s_.size();
  std::size_t end = pos_;
  while (end < n && is_op_char(static_cast<unsigned char>(s_[end]))) {
    if (end > pos_ && end + 1 < n &&
        ((s_[end] == '-' && s_[end + 1] == '-') || (s_[end] == '/' && s_[end + 1] == '*'))) {
      break;
    }
    ++end;
  }
  std::size_t len = end - pos_;
  if (len > 1 && (s_[pos_ + len - 1] == '+' || s_[pos_ + len - 1] == '-')) {
    bool qualifying = false;
    for (std::size_t k = 0; k + 1 < len; ++k) {
      switch (s_[pos_ + k]) {
        case '~':
        case '!':
        case '@':
        case '#':
        case '^':
        case '&':
        case '|':
        case '`':
        case '?':
        case '%':
          qualifying = true;
          break;
        default:
          break;
      }
    }
    if (!qualifying) {
      do {
        --len;
      } while (len > 1 && (s_[pos_ + len - 1] == '+' || s_[pos_ + len - 1] == '-'));
    }
  }
  *out = Token{TokenKind::kOperator, pos_, pos_ + len};
  pos_ += len;
  return Status::kToken;
}

SqlScanner::Status SqlScanner::next(Token* out) {
  if (done_) return gave_up_ ? Status::kGiveUp : Status::kEnd;
  if (!skip_trivia()) return give_up();
  const std::size_t n = s_.size();
  if (pos_ >= n) {
    done_ = true;
    return Status::kEnd;
  }
  const std::size_t start = pos_;
  const auto c = static_cast<unsigned char>(s_[start]);
  const char c1 = start + 1 < n ? s_[start + 1] : '\0';
  const char c2 = start + 2 < n ? s_[start + 2] : '\0';

  auto quoted = [&](TokenKind kind, std::size_t quote_at, char quote, bool backslash) -> Status {
    const std::size_t end = quoted_end(quote_at, quote, backslash);
    if (end == std::string_view::npos) return give_up();
    // "" is a zero-length identifier, an error in PostgreSQL.
    if (quote == '"' && end == quote_at + 2) return give_up();
    *out = Token{kind, start, end};
    pos_ = end;
    return Status::kToken;
  };

  if ((c == 'e' || c == 'E') && c1 == '\'') {
    return quoted(TokenKind::kEscapeString, start + 1, '\'', true);
  }
  if ((c == 'b' || c == 'B' || c == 'x' || c == 'X') && c1 == '\'') {
    // Bit strings end at the first quote; a quote right after it would start
    // a string that PostgreSQL reads differently from a '' escape.
    const std::size_t close = s_.find('\'', start + 2);
    if (close == std::string_view::npos || (close + 1 < n && s_[close + 1] == '\'')) {
      return give_up();
    }
    *out = Token{TokenKind::kBitString, start, close + 1};
    pos_ = close + 1;
    return Status::kToken;
  }
  if ((c == 'u' || c == 'U') && c1 == '&' && (c2 == '\'' || c2 == '"')) {
    return c2 == '\'' ? quoted(TokenKind::kUnicodeString, start + 2, '\'', false)
                      : quoted(TokenKind::kUnicodeIdentifier, start + 2, '"', false);
  }
  if (is_ident_start(c)) {
    std::size_t i = start + 1;
    while (i < n && is_ident_cont(static_cast<unsigned char>(s_[i]))) ++i;
    *out = Token{TokenKind::kIdentifier, start, i};
    pos_ = i;
    return Status::kToken;
  }
  if (c == '"') return quoted(TokenKind::kQuotedIdentifier, start, '"', false);
  if (c == '\'') return quoted(TokenKind::kString, start, '\'', false);
  if (c == '$') {
    if (is_digit(static_cast<unsigned char>(c1))) {
      std::size_t i = start + 1;
      while (i < n && is_digit(static_cast<unsigned char>(s_[i]))) ++i;
      if (i < n && is_ident_cont(static_cast<unsigned char>(s_[i]))) return give_up();
      *out = Token{TokenKind::kParam, start, i};
      pos_ = i;
      return Status::kToken;
    }
    // scan.l: dolqdelim \$({dolq_start}{dolq_cont}*)?\$, dolq_cont without '$'.
    std::size_t i = start + 1;
    if (i < n && is_ident_start(static_cast<unsigned char>(s_[i]))) {
      while (i < n && (is_ident_start(static_cast<unsigned char>(s_[i])) ||
                       is_digit(static_cast<unsigned char>(s_[i])))) {
        ++i;
      }
    }
    if (i >= n || s_[i] != '$') return give_up();
    const std::string_view delim = s_.substr(start, i + 1 - start);
    const std::size_t close = s_.find(delim, i + 1);
    if (close == std::string_view::npos) return give_up();
    *out = Token{TokenKind::kDollarString, start, close + delim.size()};
    pos_ = close + delim.size();
    return Status::kToken;
  }
  if (is_digit(c) || (c == '.' && is_digit(static_cast<unsigned char>(c1)))) return number(out);
  if (is_op_char(c)) return operator_token(out);
  std::size_t len = 0;
  switch (c) {
    case ',':
    case '(':
    case ')':
    case '[':
    case ']':
    case ';':
      len = 1;
      break;
    case '.':
      len = c1 == '.' ? 2 : 1;
      break;
    case ':':
      len = (c1 == ':' || c1 == '=') ? 2 : 1;
      break;
    default:
      return give_up();
  }
  *out = Token{TokenKind::kPunctuation, start, start + len};
  pos_ = start + len;
  return Status::kToken;
}

std::optional<StatementShape> lift_constants(std::string_view sql) {
  // Most ORM statements have far fewer tokens than bytes / 4.
  std::vector<Token> tokens;
  tokens.reserve(sql.size() / 4 + 8);
  SqlScanner scanner(sql);
  Token t;
  SqlScanner::Status status;
  bool statement_start = true;
  while ((status = scanner.next(&t)) == SqlScanner::Status::kToken) {
    const std::string_view text = sql.substr(t.begin, t.end - t.begin);
    if (t.kind == TokenKind::kParam) return std::nullopt;
    const bool semicolon = t.kind == TokenKind::kPunctuation && text == ";";
    if (statement_start && !semicolon) {
      if (t.kind != TokenKind::kIdentifier || !is_one_of(text, kShapeableStatements)) {
        return std::nullopt;
      }
      statement_start = false;
    }
    if (semicolon) statement_start = true;
    tokens.push_back(t);
  }
  if (status == SqlScanner::Status::kGiveUp) return std::nullopt;

  StatementShape shape;
  std::size_t copied = 0;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const Token& tok = tokens[i];
    if (tok.kind != TokenKind::kNumber && tok.kind != TokenKind::kString &&
        tok.kind != TokenKind::kEscapeString) {
      continue;
    }
    if (!starts_operand(tokens[i - 1], sql)) continue;
    if (i + 1 < tokens.size()) {
      const Token& next = tokens[i + 1];
      const std::string_view next_text = sql.substr(next.begin, next.end - next.begin);
      if (is_string_kind(next.kind)) continue;
      if (next.kind == TokenKind::kPunctuation && (next_text == "[" || next_text == ".")) continue;
    }
    // `SELECT'a'` or `'a'AND`: $k would run into the neighbouring word.
    if (tokens[i - 1].end == tok.begin && tokens[i - 1].kind == TokenKind::kIdentifier) continue;
    if (tok.end < sql.size() && is_ident_cont(static_cast<unsigned char>(sql[tok.end]))) continue;
    const std::string_view literal = sql.substr(tok.begin, tok.end - tok.begin);
    if (tok.kind == TokenKind::kEscapeString && !simple_escape_string(literal)) continue;
    if (shape.literals.empty()) shape.text.reserve(sql.size() + 16);
    shape.text.append(sql, copied, tok.begin - copied);
    shape.literals.push_back(literal);
    shape.text += '$';
    shape.text += std::to_string(shape.literals.size());
    copied = tok.end;
  }
  if (shape.literals.empty()) return std::nullopt;
  shape.text.append(sql, copied);
  return shape;
}

std::optional<std::string> constant_value(std::string_view literal) {
  if (literal.empty()) return std::nullopt;
  const char first = literal.front();
  if ((first >= '0' && first <= '9') || first == '.') {
    for (const char c : literal) {
      if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
        return std::nullopt;
      }
    }
    // scan.l: digits only and within int32 is an integer; anything else
    // (decimals, exponents, overflow) is a Float holding the text.
    std::int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(literal.data(), literal.data() + literal.size(), v);
    if (ec == std::errc() && ptr == literal.data() + literal.size() &&
        v <= std::numeric_limits<std::int32_t>::max()) {
      return std::to_string(v);
    }
    return std::string(literal);
  }
  const bool escaped = first == 'E' || first == 'e';
  const std::size_t open = escaped ? 1 : 0;
  if (literal.size() < open + 2 || literal[open] != '\'' || literal.back() != '\'') {
    return std::nullopt;
  }
  std::string out;
  out.reserve(literal.size());
  for (std::size_t i = open + 1; i + 1 < literal.size(); ++i) {
    const char c = literal[i];
    if (c == '\'') {
      // A quote inside the token is always doubled.
      if (i + 2 >= literal.size() || literal[i + 1] != '\'') return std::nullopt;
      out += '\'';
      ++i;
    } else if (c == '\\' && escaped) {
      if (i + 2 >= literal.size()) return std::nullopt;
      const char e = literal[++i];
      // Octal, \x and \u escapes are never lifted.
      if ((e >= '0' && e <= '7') || e == 'x' || e == 'u' || e == 'U') return std::nullopt;
      out += control_escape(e).value_or(e);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace tenantgate::rewriter
