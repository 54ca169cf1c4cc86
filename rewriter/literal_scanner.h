// A small lexer for the token boundaries of PostgreSQL 15's SQL (scan.l), and
// the "shape" of a statement built with it: the text with its inlined
// constants replaced by $1..$k, so that ORM traffic that differs only in
// literals shares one cached rewrite (rewrite_cache.h).
//
// The scanner follows scan.l where it matters for telling a constant from its
// surroundings: whitespace, -- and nested /* */ comments, identifiers and
// keywords, "quoted" identifiers, '' strings (standard_conforming_strings is
// always on through tenantgate), E'' strings, B''/X'' bit strings, U&'' and
// U&"", $tag$ dollar quotes, numbers, $n parameters, operators (with scan.l's
// trimming of trailing + and -) and punctuation. Whatever it is not sure
// about (unterminated quotes or comments, `123abc`, `0x1F`, `1..2`, `$foo`,
// characters outside SQL's alphabet, \v) makes it give up: the caller then
// uses the statement's exact text. It never reads outside the input.
//
// Thread-safety: plain functions and a value-type scanner; no shared state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tenantgate::rewriter {

enum class TokenKind {
  kIdentifier,         // unquoted identifier or keyword
  kQuotedIdentifier,   // "..."
  kUnicodeIdentifier,  // U&"..."
  kString,             // '...'
  kEscapeString,       // E'...'
  kBitString,          // B'...' or X'...'
  kUnicodeString,      // U&'...'
  kDollarString,       // $$...$$ or $tag$...$tag$
  kNumber,             // unsigned integer, decimal or real
  kParam,              // $n
  kOperator,           // + - = <> ->> ... as scan.l cuts them
  kPunctuation,        // , ( ) [ ] ; . .. : :: :=
};

struct Token {
  TokenKind kind = TokenKind::kIdentifier;
  std::size_t begin = 0;  // byte offsets into the scanned text
  std::size_t end = 0;
};

class SqlScanner {
 public:
  enum class Status { kToken, kEnd, kGiveUp };

  // `sql` must outlive the scanner.
  explicit SqlScanner(std::string_view sql) : s_(sql) {}

  // The next token after whitespace and comments. After kEnd or kGiveUp every
  // further call returns the same.
  [[nodiscard]] Status next(Token* out);

 private:
  Status give_up();
  bool skip_trivia();  // false: unterminated comment or an unexpected space
  std::size_t quoted_end(std::size_t i, char quote, bool backslash) const;
  Status number(Token* out);
  Status operator_token(Token* out);

  std::string_view s_;
  std::size_t pos_ = 0;
  bool done_ = false;
  bool gave_up_ = false;
};

// The statement with its liftable constants replaced by $1..$k.
struct StatementShape {
  std::string text;
  // The constants as the client wrote them, views into the scanned statement,
  // literals[k-1] for $k.
  std::vector<std::string_view> literals;
};

// Lifts constants out of a query string, or returns nullopt when it has no
// usable shape: the scanner gave up, the text already has $n parameters, a
// statement does not start with SELECT, INSERT, UPDATE, DELETE, WITH, TABLE
// or VALUES, or nothing could be lifted.
//
// A constant is lifted only where it is an operand of an expression: an
// unsigned number or a '' / E'' string whose previous token is an operator,
// `(`, `,`, `[`, or one of SELECT WHERE AND OR NOT WHEN THEN ELSE IN LIKE
// ILIKE BETWEEN LIMIT OFFSET RETURNING HAVING ON; and not when the next
// token is another string (PostgreSQL concatenates strings separated by a
// newline), `[` or `.` (a parameter takes a subscript or field selection, a
// constant does not). So typed literals (`date '...'`, `interval '1 day'`),
// ORDER BY / GROUP BY positions and everything in utility statements stay in
// the shape text. E'' strings are lifted only with simple escapes (not
// \digit, \x, \u, \U, which PostgreSQL may reject) and when they cannot
// spell an identity marker (identity_literal.h).
[[nodiscard]] std::optional<StatementShape> lift_constants(std::string_view sql);

// The value libpg_query reports for a constant lift_constants() lifted, as
// the rewriter reads it from the parse tree (an A_Const): an unsigned integer
// that fits int32 in decimal without leading zeros, any other number as
// written, a '' string without its quotes and with '' as ', an E'' string
// with its (simple) escapes resolved. nullopt for any other token.
[[nodiscard]] std::optional<std::string> constant_value(std::string_view literal);

}  // namespace tenantgate::rewriter
