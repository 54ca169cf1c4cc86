// Token-level matching of the caller statements. Identifiers compare as
// PostgreSQL compares setting names: case-insensitively, quoted or not.

#include "proxy/caller_statement.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "rewriter/literal_scanner.h"

namespace tenantgate::proxy {

namespace {

using rewriter::SqlScanner;
using rewriter::Token;
using rewriter::TokenKind;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool icontains(std::string_view text, std::string_view needle) {
  return std::search(text.begin(), text.end(), needle.begin(), needle.end(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         }) != text.end();
}

struct Tok {
  TokenKind kind;
  std::string_view text;
};

using Statement = std::vector<Tok>;

// The statements of a query string, split at ';'; nullopt when the scanner
// gives up. Empty statements are dropped.
std::optional<std::vector<Statement>> statements(std::string_view query) {
  std::vector<Statement> out(1);
  SqlScanner scanner(query);
  Token t;
  for (;;) {
    switch (scanner.next(&t)) {
      case SqlScanner::Status::kGiveUp:
        return std::nullopt;
      case SqlScanner::Status::kEnd:
        std::erase_if(out, [](const Statement& s) { return s.empty(); });
        return out;
      case SqlScanner::Status::kToken:
        break;
    }
    const std::string_view text = query.substr(t.begin, t.end - t.begin);
    if (t.kind == TokenKind::kPunctuation && text == ";") {
      out.emplace_back();
    } else {
      out.back().push_back({t.kind, text});
    }
  }
}

// An identifier's name: unquoted as written, quoted without its quotes.
std::optional<std::string> name_of(const Tok& t) {
  if (t.kind == TokenKind::kIdentifier) return std::string(t.text);
  if (t.kind == TokenKind::kQuotedIdentifier && t.text.size() >= 2) {
    std::string s;
    for (size_t i = 1; i + 1 < t.text.size(); ++i) {
      s.push_back(t.text[i]);
      if (t.text[i] == '"') ++i;  // "" is one quote
    }
    return s;
  }
  return std::nullopt;
}

bool is_word(const Tok& t, std::string_view word) {
  return t.kind == TokenKind::kIdentifier && iequals(t.text, word);
}

// Whether tokens [i, i+3) spell tenantgate.<field>.
bool names_setting(const Statement& s, size_t i, std::string_view field) {
  if (i + 3 > s.size()) return false;
  const auto a = name_of(s[i]);
  const auto b = name_of(s[i + 2]);
  return a && b && s[i + 1].kind == TokenKind::kPunctuation && s[i + 1].text == "." &&
         iequals(*a, "tenantgate") && iequals(*b, field);
}

// Where a SET/RESET of tenantgate.token starts its name, or npos.
size_t token_name_at(const Statement& s) {
  if (s.empty()) return std::string_view::npos;
  size_t i = 1;
  if (is_word(s[0], "set")) {
    if (s.size() > 1 && (is_word(s[1], "local") || is_word(s[1], "session"))) i = 2;
  } else if (!is_word(s[0], "reset")) {
    return std::string_view::npos;
  }
  return names_setting(s, i, "token") ? i : std::string_view::npos;
}

CallerStatement misplaced(std::string problem) {
  return {CallerStatementKind::kMisplaced, "", std::move(problem)};
}

}  // namespace

CallerStatement classify_caller_statement(std::string_view query) {
  if (!icontains(query, "tenantgate")) return {};
  const auto stmts = statements(query);
  if (!stmts) {
    if (icontains(query, "token")) return misplaced("the statement cannot be read");
    return {};
  }
  size_t token_statements = 0;
  for (const Statement& s : *stmts) {
    if (token_name_at(s) != std::string_view::npos) ++token_statements;
  }
  if (token_statements == 0) {
    if (stmts->size() == 1) {
      const Statement& s = stmts->front();
      if (s.size() == 4 && is_word(s[0], "show")) {
        if (names_setting(s, 1, "tenant")) return {CallerStatementKind::kShowTenant, "", ""};
        if (names_setting(s, 1, "user")) return {CallerStatementKind::kShowUser, "", ""};
      }
    }
    // The setting named anywhere else (PREPARE ... AS SET, SHOW, ALTER ROLE
    // ... SET, a SET inside another statement) is an attempt to reach it
    // another way.
    for (const Statement& s : *stmts) {
      for (size_t i = 0; i + 3 <= s.size(); ++i) {
        if (names_setting(s, i, "token")) {
          return misplaced(
              "tenantgate.token is set only by SET, SET LOCAL or RESET as a statement of its own");
        }
      }
    }
    return {};
  }
  if (stmts->size() != 1) {
    return misplaced("SET tenantgate.token must be the only statement of its query");
  }
  const Statement& s = stmts->front();
  const size_t name = token_name_at(s);
  const bool local = is_word(s[0], "set") && is_word(s[1], "local");
  if (is_word(s[0], "reset")) {
    if (s.size() != name + 3) return misplaced("RESET tenantgate.token takes nothing after it");
    return {CallerStatementKind::kReset, "", ""};
  }
  const size_t op = name + 3;
  if (op >= s.size() ||
      !((s[op].kind == TokenKind::kOperator && s[op].text == "=") || is_word(s[op], "to"))) {
    return misplaced("expected SET tenantgate.token = '<token>'");
  }
  if (s.size() == op + 2 && is_word(s[op + 1], "default")) {
    return {CallerStatementKind::kReset, "", ""};
  }
  if (s.size() != op + 2 || s[op + 1].kind != TokenKind::kString) {
    return misplaced("the value of tenantgate.token must be one plain string constant");
  }
  const std::string_view quoted = s[op + 1].text;
  std::string value;
  for (size_t i = 1; i + 1 < quoted.size(); ++i) {
    value.push_back(quoted[i]);
    if (quoted[i] == '\'') ++i;  // '' is one quote
  }
  return {local ? CallerStatementKind::kSetLocal : CallerStatementKind::kSetToken, std::move(value),
          ""};
}

bool ends_caller(std::string_view query) {
  const bool reset = icontains(query, "reset");
  const bool discard = icontains(query, "discard");
  if (!reset && !discard) return false;
  const auto stmts = statements(query);
  if (!stmts) return true;
  for (const Statement& s : *stmts) {
    if (s.size() == 2 && (is_word(s[0], "reset") || is_word(s[0], "discard")) &&
        is_word(s[1], "all")) {
      return true;
    }
  }
  return false;
}

}  // namespace tenantgate::proxy
