// Builders and parsers for the protocol messages tenantgate itself produces or
// inspects (protocol 55.7, "Message Formats"). Everything else is relayed as
// framed bytes without being decoded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tenantgate::proxy {

// ---- Backend messages built by tenantgate ----

// ErrorResponse ('E') / NoticeResponse ('N') with fields S, V, C, M (and D when
// detail is non-empty).
[[nodiscard]] std::string error_response(std::string_view severity, std::string_view sqlstate,
                                         std::string_view message, std::string_view detail = {});
[[nodiscard]] std::string notice_response(std::string_view severity, std::string_view sqlstate,
                                          std::string_view message);
// ReadyForQuery ('Z'); status is 'I', 'T' or 'E'.
[[nodiscard]] std::string ready_for_query(char status);
[[nodiscard]] std::string authentication_ok();                                              // R, 0
[[nodiscard]] std::string authentication_cleartext();                                       // R, 3
[[nodiscard]] std::string authentication_md5(std::string_view salt4);                       // R, 5
[[nodiscard]] std::string authentication_sasl(const std::vector<std::string>& mechanisms);  // R, 10
[[nodiscard]] std::string authentication_sasl_continue(std::string_view data);              // R, 11
[[nodiscard]] std::string authentication_sasl_final(std::string_view data);                 // R, 12
[[nodiscard]] std::string parameter_status(std::string_view name, std::string_view value);  // S
[[nodiscard]] std::string backend_key_data(int32_t pid, int32_t key);                       // K
// NegotiateProtocolVersion ('v'): the newest minor version of protocol 3 that
// is supported, and the "_pq_." start-up options that were not recognised. As
// PostgreSQL, send it after a StartupMessage asking for 3.x with x > 0 or
// carrying "_pq_." options, before the authentication request.
[[nodiscard]] std::string negotiate_protocol_version(int32_t newest_minor,
                                                     const std::vector<std::string>& unrecognized);

// ---- Frontend messages built by tenantgate (towards the backend) ----

[[nodiscard]] std::string password_message(std::string_view password);  // p, NUL-terminated
[[nodiscard]] std::string sasl_initial_response(std::string_view mechanism, std::string_view data);
[[nodiscard]] std::string sasl_response(std::string_view data);
[[nodiscard]] std::string query_message(std::string_view sql);  // Q
void append_query_message(std::string& out, std::string_view sql);
[[nodiscard]] std::string terminate_message();  // X

// ---- Parsers of message bodies (after type and length) ----
//
// Parsers return nullopt for a body that is malformed, truncated or followed by
// trailing bytes. Every string_view in a result points into `body`: keep the
// buffer alive (and unmodified) while the result is used.

struct ErrorFields {
  std::string severity;  // V (non-localized) or S
  std::string sqlstate;  // C
  std::string message;   // M
  std::string detail;    // D
};
// Parses an ErrorResponse or NoticeResponse body.
[[nodiscard]] std::optional<ErrorFields> parse_error_fields(std::string_view body);

// An exclusion-constraint violation (23P01) names the existing row it
// conflicts with in its DETAIL, and that row may be another tenant's. For
// such an ErrorResponse body: the whole message ('E', length, body) with the
// DETAIL PostgreSQL itself sends when it may not show the key ("Key conflicts
// with existing key.", as for a table with row-level security); nullopt for
// any other body, or one that does not parse.
// The same for a "Failing row contains (...)" DETAIL (not-null and check
// violations): it lists every column of the new row, masked ones and values
// a row policy hides included, so it is dropped, as PostgreSQL drops it for a
// table with row-level security.
[[nodiscard]] std::optional<std::string> redact_row_detail(std::string_view body);

// An Authentication ('R') request from the backend.
struct AuthRequest {
  int32_t code = 0;       // 0 ok, 3 cleartext, 5 md5, 10 SASL, 11 SASL continue, 12 SASL final
  std::string_view data;  // md5: 4-byte salt; 11/12: SASL data; 10: mechanism list
  std::vector<std::string_view> mechanisms;  // code 10 only
};
[[nodiscard]] std::optional<AuthRequest> parse_auth_request(std::string_view body);

struct BackendKey {
  int32_t pid = 0;
  int32_t key = 0;
};
[[nodiscard]] std::optional<BackendKey> parse_backend_key_data(std::string_view body);
[[nodiscard]] std::optional<char> parse_ready_for_query(std::string_view body);
// ParameterStatus ('S'): name and value.
struct ParameterStatus {
  std::string_view name;
  std::string_view value;
};
[[nodiscard]] std::optional<ParameterStatus> parse_parameter_status(std::string_view body);

// SASLInitialResponse ('p' during SASL): mechanism, then Int32 length (-1: none) and data.
struct SaslInitial {
  std::string_view mechanism;
  std::string_view data;
};
[[nodiscard]] std::optional<SaslInitial> parse_sasl_initial_response(std::string_view body);
// PasswordMessage ('p' during cleartext/md5): a NUL-terminated string.
[[nodiscard]] std::optional<std::string_view> parse_password_message(std::string_view body);
// Query ('Q'): the NUL-terminated SQL; a NUL inside or a missing terminator is an error.
[[nodiscard]] std::optional<std::string_view> parse_query(std::string_view body);

// Parse ('P').
struct ParseMessage {
  std::string_view statement;
  std::string_view query;
  std::vector<int32_t> param_types;
};
[[nodiscard]] std::optional<ParseMessage> parse_parse(std::string_view body);
[[nodiscard]] std::string encode_parse(std::string_view statement, std::string_view query,
                                       const std::vector<int32_t>& param_types);
void append_parse(std::string& out, std::string_view statement, std::string_view query,
                  const std::vector<int32_t>& param_types);

// Bind ('B').
struct BindMessage {
  std::string_view portal;
  std::string_view statement;
  std::vector<int16_t> param_formats;  // 0 text, 1 binary; 0 or 1 entries apply to all
  std::vector<std::optional<std::string_view>> params;  // nullopt: SQL NULL
  std::vector<int16_t> result_formats;
};
[[nodiscard]] std::optional<BindMessage> parse_bind(std::string_view body);
// parse_bind into `out`, reusing its vectors' memory (the relay parses every
// Bind into one per session). False for a malformed body; `out` then holds
// whatever was read so far.
[[nodiscard]] bool parse_bind(std::string_view body, BindMessage& out);

// Describe ('D') and Close ('C'): kind 'S' or 'P', then a name.
struct DescribeOrClose {
  char kind = 'S';
  std::string_view name;
};
[[nodiscard]] std::optional<DescribeOrClose> parse_describe_or_close(std::string_view body);

}  // namespace tenantgate::proxy
