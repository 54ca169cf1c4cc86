#include "proxy/messages.h"

#include <gtest/gtest.h>

#include <string>

namespace tenantgate::proxy {
namespace {

using namespace std::string_literals;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

// Parsers return views into the body they were given: every test keeps the
// body alive in a named variable while it looks at the result.

// ---- builders: exact bytes ----

TEST(Builders, ErrorResponse) {
  EXPECT_EQ(error_response("FATAL", "28000", "no tenant"),
            "E\x00\x00\x00\x25"
            "SFATAL\x00VFATAL\x00"
            "C28000\x00Mno tenant\x00\x00"s);
  EXPECT_EQ(error_response("ERROR", "42501", "m", "d"),
            "E\x00\x00\x00\x20SERROR\x00VERROR\x00"
            "C42501\x00Mm\x00"
            "Dd\x00\x00"s);
}

TEST(Builders, NoticeResponse) {
  EXPECT_EQ(notice_response("WARNING", "01000", "w"),
            "N\x00\x00\x00\x21SWARNING\x00VWARNING\x00"
            "C01000\x00Mw\x00\x00"s);
}

TEST(Builders, ErrorResponseRoundTripsThroughTheParser) {
  const std::string m = error_response("ERROR", "42501", "refused", "because");
  auto f = parse_error_fields(std::string_view(m).substr(5));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->severity, "ERROR");
  EXPECT_EQ(f->sqlstate, "42501");
  EXPECT_EQ(f->message, "refused");
  EXPECT_EQ(f->detail, "because");
}

TEST(Builders, SmallBackendMessages) {
  EXPECT_EQ(ready_for_query('I'), "Z\x00\x00\x00\x05I"s);
  EXPECT_EQ(authentication_ok(), "R\x00\x00\x00\x08\x00\x00\x00\x00"s);
  EXPECT_EQ(authentication_cleartext(), "R\x00\x00\x00\x08\x00\x00\x00\x03"s);
  EXPECT_EQ(authentication_md5("\x01\x02\x03\x04"),
            "R\x00\x00\x00\x0c\x00\x00\x00\x05\x01\x02\x03\x04"s);
  EXPECT_EQ(authentication_sasl({"SCRAM-SHA-256"}),
            "R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"s);
  EXPECT_EQ(authentication_sasl_continue("r=x"), "R\x00\x00\x00\x0b\x00\x00\x00\x0br=x"s);
  EXPECT_EQ(authentication_sasl_final("v=x"), "R\x00\x00\x00\x0b\x00\x00\x00\x0cv=x"s);
  EXPECT_EQ(parameter_status("a", "b"),
            "S\x00\x00\x00\x08"
            "a\x00"
            "b\x00"s);
  EXPECT_EQ(backend_key_data(1, -1), "K\x00\x00\x00\x0c\x00\x00\x00\x01\xff\xff\xff\xff"s);
}

TEST(Builders, FrontendMessages) {
  EXPECT_EQ(password_message("pw"), "p\x00\x00\x00\x07pw\x00"s);
  EXPECT_EQ(sasl_initial_response("SCRAM-SHA-256", "n,,"),
            "p\x00\x00\x00\x19"
            "SCRAM-SHA-256\x00\x00\x00\x00\x03n,,"s);
  EXPECT_EQ(sasl_response("c=biws"),
            "p\x00\x00\x00\x0a"
            "c=biws"s);
  EXPECT_EQ(query_message("SELECT 1"), "Q\x00\x00\x00\x0dSELECT 1\x00"s);
  EXPECT_EQ(terminate_message(), "X\x00\x00\x00\x04"s);
  EXPECT_EQ(encode_parse("s", "q", {23, 25}),
            "P\x00\x00\x00\x12s\x00q\x00\x00\x02\x00\x00\x00\x17\x00\x00\x00\x19"s);
}

// ---- ErrorResponse / NoticeResponse ----

TEST(ParseErrorFields, PrefersTheNonLocalizedSeverity) {
  auto f = parse_error_fields(
      "SFEHLER\x00VERROR\x00"
      "C42P01\x00Mx\x00\x00"s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->severity, "ERROR");
  EXPECT_EQ(f->detail, "");
}

TEST(ParseErrorFields, FallsBackToS) {
  auto f = parse_error_fields(
      "SERROR\x00"
      "C42P01\x00Mx\x00Hhint\x00\x00"s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->severity, "ERROR");
}

TEST(ParseErrorFields, Refusals) {
  EXPECT_FALSE(parse_error_fields(""));
  EXPECT_FALSE(
      parse_error_fields("SERROR\x00"
                         "C42P01\x00Mx\x00"s));  // no final NUL
  EXPECT_FALSE(
      parse_error_fields("SERROR\x00"
                         "C42P01\x00Mx"s));  // field unterminated
  EXPECT_FALSE(
      parse_error_fields("SERROR\x00"
                         "C42P01\x00Mx\x00\x00z"s));          // trailing bytes
  EXPECT_FALSE(parse_error_fields("SERROR\x00Mx\x00\x00"s));  // no code
  EXPECT_FALSE(parse_error_fields("C42P01\x00Mx\x00\x00"s));  // no severity
  EXPECT_FALSE(
      parse_error_fields("SERROR\x00"
                         "C42P01\x00\x00"s));  // no message
}

// ---- Authentication ----

TEST(ParseAuthRequest, Kinds) {
  auto ok = parse_auth_request(be32(0));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->code, 0);
  const std::string md5_body = be32(5) + "salt";
  auto md5 = parse_auth_request(md5_body);
  ASSERT_TRUE(md5);
  EXPECT_EQ(md5->data, "salt");
  const std::string sasl_body = be32(10) + "SCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"s;
  auto sasl = parse_auth_request(sasl_body);
  ASSERT_TRUE(sasl);
  ASSERT_EQ(sasl->mechanisms.size(), 2u);
  EXPECT_EQ(sasl->mechanisms[0], "SCRAM-SHA-256-PLUS");
  EXPECT_EQ(sasl->mechanisms[1], "SCRAM-SHA-256");
  const std::string cont_body = be32(11) + "r=abc";
  auto cont = parse_auth_request(cont_body);
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->code, 11);
  EXPECT_EQ(cont->data, "r=abc");
  auto gss = parse_auth_request(be32(7));  // returned so that the caller can name it
  ASSERT_TRUE(gss);
  EXPECT_EQ(gss->code, 7);
}

TEST(ParseAuthRequest, Refusals) {
  EXPECT_FALSE(parse_auth_request("\x00\x00\x00"s));
  EXPECT_FALSE(parse_auth_request(be32(0) + "x"));
  EXPECT_FALSE(parse_auth_request(be32(3) + "x"));
  EXPECT_FALSE(parse_auth_request(be32(5) + "abc"));
  EXPECT_FALSE(parse_auth_request(be32(5) + "abcde"));
  EXPECT_FALSE(parse_auth_request(be32(10) + "\x00"s));                    // no mechanisms
  EXPECT_FALSE(parse_auth_request(be32(10) + "SCRAM-SHA-256\x00"s));       // no list end
  EXPECT_FALSE(parse_auth_request(be32(10) + "SCRAM-SHA-256\x00\x00x"s));  // trailing
}

TEST(ParseBackendKeyData, ExactlyEightBytes) {
  auto k = parse_backend_key_data(be32(7) + be32(0xfffffffe));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->pid, 7);
  EXPECT_EQ(k->key, -2);
  EXPECT_FALSE(parse_backend_key_data(be32(7)));
  EXPECT_FALSE(parse_backend_key_data(be32(7) + be32(1) + "x"));
}

TEST(ParseReadyForQuery, Statuses) {
  EXPECT_EQ(parse_ready_for_query("I"), 'I');
  EXPECT_EQ(parse_ready_for_query("T"), 'T');
  EXPECT_EQ(parse_ready_for_query("E"), 'E');
  EXPECT_FALSE(parse_ready_for_query("X"));
  EXPECT_FALSE(parse_ready_for_query(""));
  EXPECT_FALSE(parse_ready_for_query("II"));
}

TEST(Builders, NegotiateProtocolVersion) {
  EXPECT_EQ(negotiate_protocol_version(0, {"_pq_.x"}),
            "v\x00\x00\x00\x13\x00\x00\x00\x00\x00\x00\x00\x01_pq_.x\x00"s);
}

TEST(ParseParameterStatus, NameAndValue) {
  const std::string body = "TimeZone\x00UTC\x00"s;
  auto p = parse_parameter_status(body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "TimeZone");
  EXPECT_EQ(p->value, "UTC");
  EXPECT_FALSE(parse_parameter_status("TimeZone\x00UTC"s));
  EXPECT_FALSE(parse_parameter_status("TimeZone\x00UTC\x00x"s));
  EXPECT_FALSE(parse_parameter_status("\x00UTC\x00"s));
}

// ---- SASLInitialResponse, PasswordMessage, Query ----

TEST(ParseSaslInitialResponse, WithAndWithoutData) {
  const std::string a_body = "SCRAM-SHA-256\x00"s + be32(3) + "n,,";
  auto a = parse_sasl_initial_response(a_body);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(a->data, "n,,");
  auto b = parse_sasl_initial_response("SCRAM-SHA-256\x00"s + be32(0xffffffff));
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->data.empty());
}

TEST(ParseSaslInitialResponse, Refusals) {
  EXPECT_FALSE(parse_sasl_initial_response("SCRAM-SHA-256"));
  EXPECT_FALSE(parse_sasl_initial_response("SCRAM-SHA-256\x00"s + be32(4) + "n,,"));
  EXPECT_FALSE(parse_sasl_initial_response("SCRAM-SHA-256\x00"s + be32(2) + "n,,"));
  EXPECT_FALSE(parse_sasl_initial_response("SCRAM-SHA-256\x00"s + be32(0xfffffffe)));
  EXPECT_FALSE(parse_sasl_initial_response("SCRAM-SHA-256\x00"s + be32(0xffffffff) + "x"));
}

TEST(ParsePasswordMessage, Basic) {
  EXPECT_EQ(parse_password_message("pw\x00"s), "pw");
  EXPECT_FALSE(parse_password_message("pw"));
  EXPECT_FALSE(parse_password_message("pw\x00x"s));
}

TEST(ParseQuery, Basic) {
  EXPECT_EQ(parse_query("SELECT 1\x00"s), "SELECT 1");
  EXPECT_EQ(parse_query("\x00"s), "");
}

TEST(ParseQuery, EmbeddedNulMissingTerminatorAndTrailingBytesAreRefused) {
  EXPECT_FALSE(
      parse_query("SELECT 1; \x00"
                  "DROP TABLE t\x00"s));
  EXPECT_FALSE(parse_query("SELECT 1"));
  EXPECT_FALSE(parse_query(""));
  EXPECT_FALSE(parse_query("SELECT 1\x00x"s));
  EXPECT_FALSE(parse_query("SELECT 1\x00\x00"s));
}

// ---- Parse, Bind, Describe, Close ----

TEST(ParseParse, Basic) {
  const std::string body = "s1\x00SELECT $1, $2\x00"s + be16(2) + be32(23) + be32(0);
  auto p = parse_parse(body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->statement, "s1");
  EXPECT_EQ(p->query, "SELECT $1, $2");
  EXPECT_EQ(p->param_types, (std::vector<int32_t>{23, 0}));
}

TEST(ParseParse, CountIsUnsignedAsInPostgres) {
  std::string body = "\x00q\x00"s + be16(40000);
  for (int i = 0; i < 40000; ++i) body += be32(25);
  auto p = parse_parse(body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->param_types.size(), 40000u);
}

TEST(ParseParse, Refusals) {
  EXPECT_FALSE(parse_parse("s1\x00q\x00"s));                  // no count
  EXPECT_FALSE(parse_parse("s1\x00q\x00"s + be16(1)));        // count without types
  EXPECT_FALSE(parse_parse("s1\x00q\x00"s + be16(0) + "x"));  // trailing
  EXPECT_FALSE(parse_parse("s1\x00q"s));                      // unterminated query
}

TEST(AppendMessages, AppendAfterTheBytesAlreadyThere) {
  std::string out = "batch";
  append_query_message(out, "SELECT 1");
  append_parse(out, "s", "SELECT $1", {23});
  EXPECT_EQ(out, "batch" + query_message("SELECT 1") + encode_parse("s", "SELECT $1", {23}));
}

TEST(ParseParse, RoundTripsEncodeParse) {
  const std::string m = encode_parse("", "SELECT $1", {23});
  auto p = parse_parse(std::string_view(m).substr(5));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->query, "SELECT $1");
  EXPECT_EQ(p->param_types, std::vector<int32_t>{23});
}

std::string bind_body(const std::string& formats, uint16_t nparams, const std::string& params,
                      const std::string& result_formats) {
  return "portal\x00stmt\x00"s + formats + be16(nparams) + params + result_formats;
}

TEST(ParseBind, ParamsNullsAndFormats) {
  const std::string body = bind_body(be16(2) + be16(0) + be16(1), 2,
                                     be32(2) + "42" + be32(0xffffffff), be16(1) + be16(1));
  auto b = parse_bind(body);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->portal, "portal");
  EXPECT_EQ(b->statement, "stmt");
  EXPECT_EQ(b->param_formats, (std::vector<int16_t>{0, 1}));
  ASSERT_EQ(b->params.size(), 2u);
  EXPECT_EQ(b->params[0], "42");
  EXPECT_FALSE(b->params[1]);
  EXPECT_EQ(b->result_formats, std::vector<int16_t>{1});
}

TEST(ParseBind, EmptyValueIsNotNull) {
  const std::string body = bind_body(be16(0), 1, be32(0), be16(0));
  auto b = parse_bind(body);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->params.size(), 1u);
  ASSERT_TRUE(b->params[0]);
  EXPECT_EQ(*b->params[0], "");
}

TEST(ParseBind, AReusedMessageHoldsOnlyTheLatestBind) {
  BindMessage b;
  ASSERT_TRUE(parse_bind(bind_body(be16(2) + be16(0) + be16(1), 2,
                                   be32(2) + "42" + be32(0xffffffff), be16(1) + be16(1)),
                         b));
  ASSERT_TRUE(parse_bind(bind_body(be16(0), 1, be32(0), be16(0)), b));
  EXPECT_TRUE(b.param_formats.empty());
  ASSERT_EQ(b.params.size(), 1u);
  EXPECT_EQ(b.params[0], "");
  EXPECT_TRUE(b.result_formats.empty());
  EXPECT_FALSE(parse_bind(bind_body(be16(1) + be16(2), 0, "", be16(0)), b));  // format code 2
}

TEST(ParseBind, Refusals) {
  // Two format codes for three parameters (PostgreSQL: "bind message has 2 parameter formats but 3
  // parameters").
  EXPECT_FALSE(parse_bind(bind_body(be16(2) + be16(0) + be16(0), 3,
                                    be32(1) + "a" + be32(1) + "b" + be32(1) + "c", be16(0))));
  EXPECT_FALSE(parse_bind(bind_body(be16(1) + be16(2), 0, "", be16(0))));      // format code 2
  EXPECT_FALSE(parse_bind(bind_body(be16(0), 0, "", be16(1) + be16(7))));      // result format 7
  EXPECT_FALSE(parse_bind(bind_body(be16(0), 1, be32(0xfffffffe), be16(0))));  // length -2
  EXPECT_FALSE(parse_bind(bind_body(be16(0), 1, be32(5) + "abc", be16(0))));   // short value
  EXPECT_FALSE(parse_bind(bind_body(be16(0), 2, be32(1) + "a", be16(0))));     // missing param
  EXPECT_FALSE(parse_bind(bind_body(be16(0), 0, "", "")));                     // no result count
  EXPECT_FALSE(parse_bind(bind_body(be16(0), 0, "", be16(0) + "x")));          // trailing
}

TEST(ParseDescribeOrClose, Kinds) {
  const std::string s_body = "Sname\x00"s;
  auto s = parse_describe_or_close(s_body);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->kind, 'S');
  EXPECT_EQ(s->name, "name");
  auto p = parse_describe_or_close("P\x00"s);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, 'P');
  EXPECT_EQ(p->name, "");
  EXPECT_FALSE(parse_describe_or_close("Xname\x00"s));
  EXPECT_FALSE(parse_describe_or_close("Sname"));
  EXPECT_FALSE(parse_describe_or_close("Sname\x00x"s));
  EXPECT_FALSE(parse_describe_or_close(""));
}

}  // namespace
}  // namespace tenantgate::proxy

namespace tenantgate::proxy {
namespace {

TEST(RedactExclusionDetail, ReplacesTheConflictingKeyOnlyFor23P01) {
  const std::string body =
      error_response("ERROR", "23P01", "conflicting key value",
                     "Key (room)=(101) conflicts with existing key (room)=(101).")
          .substr(5);
  auto redacted = redact_row_detail(body);
  ASSERT_TRUE(redacted.has_value());
  auto fields = parse_error_fields(std::string_view(*redacted).substr(5));
  ASSERT_TRUE(fields.has_value());
  EXPECT_EQ(fields->sqlstate, "23P01");
  EXPECT_EQ(fields->message, "conflicting key value");
  EXPECT_EQ(fields->detail, "Key conflicts with existing key.");
  // The length prefix covers the new body (and itself).
  EXPECT_EQ(static_cast<unsigned char>((*redacted)[4]), redacted->size() - 1);

  EXPECT_FALSE(
      redact_row_detail(
          error_response("ERROR", "23505", "duplicate", "Key (id)=(1) already exists.").substr(5))
          .has_value());
  EXPECT_FALSE(redact_row_detail("C23P01").has_value());  // no terminator
}

// A not-null violation lists the whole new row, masked columns included: the
// DETAIL goes, the rest of the error stays.
TEST(RedactRowDetail, DropsTheFailingRowOfNotNullAndCheckViolations) {
  for (const char* sqlstate : {"23502", "23514"}) {
    const std::string body =
        error_response("ERROR", sqlstate, "null value in column \"email\" violates not-null",
                       "Failing row contains (2, acme, null, member, 200).")
            .substr(5);
    auto redacted = redact_row_detail(body);
    ASSERT_TRUE(redacted.has_value()) << sqlstate;
    auto fields = parse_error_fields(std::string_view(*redacted).substr(5));
    ASSERT_TRUE(fields.has_value());
    EXPECT_EQ(fields->sqlstate, sqlstate);
    EXPECT_EQ(fields->message, "null value in column \"email\" violates not-null");
    EXPECT_EQ(fields->detail, "");
    EXPECT_EQ(redacted->find("200"), std::string::npos);
  }
}

}  // namespace
}  // namespace tenantgate::proxy
