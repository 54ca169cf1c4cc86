#include "rewriter/statement_limits.h"

#include <algorithm>
#include <string>

namespace tenantgate::rewriter {
namespace {

bool is_ident_start(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
bool is_ident_cont(unsigned char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}
bool is_operator_char(unsigned char c) {
  switch (c) {
    case '+':
    case '-':
    case '*':
    case '/':
    case '<':
    case '>':
    case '=':
    case '~':
    case '!':
    case '@':
    case '#':
    case '%':
    case '^':
    case '&':
    case '|':
    case '`':
    case '?':
    case ':':
      return true;
    default:
      return false;
  }
}

// Index just past a quoted section that starts at `i` (the opening quote).
// With backslash escapes for E'' strings. Unterminated: the end of input.
std::size_t skip_quoted(std::string_view s, std::size_t i, char quote, bool backslash) {
  ++i;
  while (i < s.size()) {
    const char c = s[i];
    if (backslash && c == '\\') {
      i += 2;
      continue;
    }
    if (c == quote) {
      if (i + 1 < s.size() && s[i + 1] == quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    ++i;
  }
  return s.size();
}

bool equals_keyword(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    char c = word[k];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[k]) return false;
  }
  return true;
}

}  // namespace

NestingEstimate estimate_nesting(std::string_view s) {
  NestingEstimate e;
  std::size_t depth = 0;
  std::size_t i = 0;
  const std::size_t n = s.size();
  bool in_statement = false;  // a token seen since the last semicolon
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    const bool comment =
        (c == '-' && i + 1 < n && s[i + 1] == '-') || (c == '/' && i + 1 < n && s[i + 1] == '*');
    if (c == ';') {
      in_statement = false;
    } else if (!space && !comment && !in_statement) {
      in_statement = true;
      ++e.statements;
    }
    if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      while (i < n && s[i] != '\n' && s[i] != '\r') ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      std::size_t nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
          ++nest;
          i += 2;
        } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
          --nest;
          i += 2;
        } else {
          ++i;
        }
      }
      continue;
    }
    if (c == '\'') {
      i = skip_quoted(s, i, '\'', false);
      continue;
    }
    if (c == '"') {
      ++e.words;
      i = skip_quoted(s, i, '"', false);
      continue;
    }
    if ((c == 'e' || c == 'E') && i + 1 < n && s[i + 1] == '\'') {
      i = skip_quoted(s, i + 1, '\'', true);
      continue;
    }
    if (c == '$') {
      // $n parameter, or a dollar-quote delimiter $tag$ / $$.
      std::size_t j = i + 1;
      if (j < n && s[j] >= '0' && s[j] <= '9') {
        while (j < n && s[j] >= '0' && s[j] <= '9') ++j;
        i = j;
        continue;
      }
      if (j < n && is_ident_start(static_cast<unsigned char>(s[j]))) {
        ++j;
        while (j < n &&
               (is_ident_start(static_cast<unsigned char>(s[j])) || (s[j] >= '0' && s[j] <= '9'))) {
          ++j;
        }
      }
      if (j < n && s[j] == '$') {
        const std::string_view delim = s.substr(i, j - i + 1);
        const std::size_t close = s.find(delim, j + 1);
        i = close == std::string_view::npos ? n : close + delim.size();
        continue;
      }
      ++e.operator_chars;
      ++i;
      continue;
    }
    if (is_ident_start(c)) {
      ++e.words;
      const std::size_t start = i;
      while (i < n && is_ident_cont(static_cast<unsigned char>(s[i]))) ++i;
      const std::string_view word = s.substr(start, i - start);
      if (equals_keyword(word, "UNION") || equals_keyword(word, "INTERSECT") ||
          equals_keyword(word, "EXCEPT")) {
        ++e.set_operations;
      }
      continue;
    }
    if (c >= '0' && c <= '9') {
      // Digits, a decimal point and an exponent; a letter after the number
      // starts a new token (PostgreSQL 15 reads `1a` as `1 a`).
      while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
      if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) ++j;
        if (j < n && s[j] >= '0' && s[j] <= '9') {
          while (j < n && s[j] >= '0' && s[j] <= '9') ++j;
          i = j;
        }
      }
      continue;
    }
    if (c == '(' || c == '[') {
      ++depth;
      e.max_brackets = std::max(e.max_brackets, depth);
    } else if (c == ')' || c == ']') {
      if (depth > 0) --depth;
    } else if (is_operator_char(c)) {
      ++e.operator_chars;
    }
    ++i;
  }
  return e;
}

std::optional<Refusal> check_statement_limits(std::string_view sql, const Options& options) {
  const NestingEstimate e = estimate_nesting(sql);
  if (e.units() > options.max_nesting_units) {
    return Refusal{"54001", "statement is too complex to analyse safely (nesting estimate " +
                                std::to_string(e.units()) + " > " +
                                std::to_string(options.max_nesting_units) + ")"};
  }
  if (e.set_operations > options.max_set_operations) {
    return Refusal{"54001", "statement is too complex to analyse safely (" +
                                std::to_string(e.set_operations) +
                                " UNION/INTERSECT/EXCEPT operations > " +
                                std::to_string(options.max_set_operations) + ")"};
  }
  if (e.statements > options.max_statements) {
    return Refusal{"54001", "too many statements in one query string to analyse safely (" +
                                std::to_string(e.statements) + " > " +
                                std::to_string(options.max_statements) + ")"};
  }
  return std::nullopt;
}

}  // namespace tenantgate::rewriter
