#include "proxy/scram.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tenantgate::proxy {
namespace {

// RFC 7677 section 3 test vector.
constexpr std::string_view kPassword = "pencil";
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// The verifier for "pencil" with the RFC's salt, computed with Python:
//   sp = hashlib.pbkdf2_hmac('sha256', b'pencil', b64decode('W22ZaJ0SNY7soEsUEjb6gQ=='), 4096)
//   StoredKey = sha256(hmac(sp, b'Client Key')), ServerKey = hmac(sp, b'Server Key')
constexpr std::string_view kVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

ScramVerifier rfc_verifier() {
  auto v = parse_scram_verifier(kVerifier);
  EXPECT_TRUE(v);
  return v.value_or(ScramVerifier{});
}

TEST(ScramVerifierText, ParsesTheRfcVerifier) {
  auto v = parse_scram_verifier(kVerifier);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 4096);
  EXPECT_EQ(v->salt.size(), 16u);
  EXPECT_EQ(v->stored_key.size(), 32u);
  EXPECT_EQ(v->server_key.size(), 32u);
}

TEST(ScramVerifierText, MakeMatchesPythonAndRoundTrips) {
  const std::string salt = parse_scram_verifier(kVerifier)->salt;
  EXPECT_EQ(make_scram_verifier(kPassword, salt, 4096), kVerifier);

  const std::string made = make_scram_verifier("correct horse", "0123456789abcdef", 16);
  auto v = parse_scram_verifier(made);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 16);
  EXPECT_EQ(v->salt, "0123456789abcdef");
  ScramServer server(*v, random_nonce());
  ScramClient client("correct horse", random_nonce());
  auto first = server.on_client_first(client.client_first());
  ASSERT_TRUE(first.ok) << first.message;
  auto final_msg = client.on_server_first(first.message);
  ASSERT_TRUE(final_msg.ok) << final_msg.message;
  auto server_final = server.on_client_final(final_msg.message);
  ASSERT_TRUE(server_final.ok) << server_final.message;
  EXPECT_TRUE(client.on_server_final(server_final.message).ok);
}

TEST(ScramVerifierText, MalformedVerifiersAreRejected) {
  const std::string good(kVerifier);
  const std::string keys =
      "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
  for (const std::string& bad : {
           std::string(""), std::string("SCRAM-SHA-256$"),
           std::string("md5c4ca4238a0b923820dcc509a6f75849b"),
           std::string("SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==") + keys,
           std::string("SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==") + keys,
           std::string("SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==") + keys,
           std::string("SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==") + keys,
           std::string("SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==") + keys,
           std::string("SCRAM-SHA-256$4096:") + keys,                             // empty salt
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=") + keys,      // bad padding
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==\n") + keys,   // whitespace
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7so*sUEjb6gQ==") + keys,     // alphabet
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:AAAA"),  // short keys
           good.substr(0, good.size() - 4),                                       // truncated key
           good + "AAAA",                                                         // long key
           good + "$",
           // Non-canonical base64: the last character's unused bits are set.
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gR==") + keys,
           std::string("SCRAM-SHA-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==") + keys,  // separators
       }) {
    EXPECT_FALSE(parse_scram_verifier(bad)) << bad;
  }
}

TEST(ScramClientSide, Rfc7677Vector) {
  ScramClient client(std::string(kPassword), std::string(kClientNonce), "user");
  EXPECT_EQ(client.client_first(), kClientFirst);
  auto final_msg = client.on_server_first(kServerFirst);
  ASSERT_TRUE(final_msg.ok) << final_msg.message;
  EXPECT_EQ(final_msg.message, kClientFinal);
  auto done = client.on_server_final(kServerFinal);
  EXPECT_TRUE(done.ok) << done.message;
}

TEST(ScramClientSide, SaltedPasswordCacheGivesTheSameExchange) {
  SaltedPasswordCache cache;
  for (int login = 0; login < 3; ++login) {
    ScramClient client(std::string(kPassword), std::string(kClientNonce), "user");
    client.use_cache(&cache);
    EXPECT_EQ(client.client_first(), kClientFirst);
    auto final_msg = client.on_server_first(kServerFirst);
    ASSERT_TRUE(final_msg.ok) << final_msg.message;
    EXPECT_EQ(final_msg.message, kClientFinal);
    EXPECT_TRUE(client.on_server_final(kServerFinal).ok);
  }
  EXPECT_EQ(cache.size(), 1u);  // one PBKDF2 for three logins
  // Another password (or salt, or count) is another entry, never a stale one.
  ScramClient other("other password", std::string(kClientNonce), "user");
  other.use_cache(&cache);
  (void)other.client_first();
  auto step = other.on_server_first(kServerFirst);
  ASSERT_TRUE(step.ok);
  EXPECT_NE(step.message, kClientFinal);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ScramClientSide, SendsAnEmptyUserNameLikeLibpq) {
  ScramClient client("pw", "abc");
  EXPECT_EQ(client.client_first(), "n,,n=,r=abc");
  ScramClient named("pw", "abc", "a,b=c");
  EXPECT_EQ(named.client_first(), "n,,n=a=2Cb=3Dc,r=abc");
}

TEST(ScramClientSide, WrongServerSignatureIsRefused) {
  ScramClient client(std::string(kPassword), std::string(kClientNonce), "user");
  (void)client.client_first();
  ASSERT_TRUE(client.on_server_first(kServerFirst).ok);
  auto done = client.on_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  EXPECT_FALSE(done.ok);
  EXPECT_NE(done.message.find("server signature"), std::string::npos);
}

TEST(ScramClientSide, NonCanonicalSignatureEncodingIsRefused) {
  ScramClient client(std::string(kPassword), std::string(kClientNonce), "user");
  (void)client.client_first();
  ASSERT_TRUE(client.on_server_first(kServerFirst).ok);
  // ...G4= and ...G5= decode to the same bytes; only the canonical one is accepted.
  EXPECT_FALSE(client.on_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=").ok);
}

TEST(ScramClientSide, TrailingCommaIsRefused) {
  ScramClient client(std::string(kPassword), std::string(kClientNonce), "user");
  (void)client.client_first();
  ASSERT_TRUE(client.on_server_first(kServerFirst).ok);
  EXPECT_FALSE(client.on_server_final(std::string(kServerFinal) + ",").ok);
}

TEST(ScramClientSide, ServerSignatureForAnotherPasswordIsRefused) {
  ScramClient client("not pencil", std::string(kClientNonce), "user");
  (void)client.client_first();
  ASSERT_TRUE(client.on_server_first(kServerFirst).ok);
  EXPECT_FALSE(client.on_server_final(kServerFinal).ok);
}

TEST(ScramClientSide, ServerErrorsAreReported) {
  ScramClient client(std::string(kPassword), std::string(kClientNonce), "user");
  (void)client.client_first();
  ASSERT_TRUE(client.on_server_first(kServerFirst).ok);
  auto done = client.on_server_final("e=invalid-proof");
  EXPECT_FALSE(done.ok);
  EXPECT_EQ(done.message, "SCRAM server error: invalid-proof");

  ScramClient early("pw", "abc");
  (void)early.client_first();
  EXPECT_EQ(early.on_server_first("e=unknown-user").message, "SCRAM server error: unknown-user");
}

TEST(ScramClientSide, MalformedServerFirstMessages) {
  for (std::string_view bad : {
           "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",     // no server part
           "r=XOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // not our nonce
           "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",   // bad salt
           "r=rOprNGfwEbeRWgbNEkqOabc,s=,i=4096",                          // empty salt
           "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
           "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=x",
           "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==",
           "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1,x=y",  // garbage at end
           "m=ext,r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
           "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOabc,i=1",
           "",
       }) {
    ScramClient client{std::string(kPassword), std::string(kClientNonce)};
    (void)client.client_first();
    auto step = client.on_server_first(bad);
    EXPECT_FALSE(step.ok) << bad;
    EXPECT_FALSE(step.message.empty());
  }
}

TEST(ScramClientSide, OutOfOrderCallsAreRefused) {
  ScramClient client("pw", "abc");
  EXPECT_FALSE(client.on_server_first("r=abcdef,s=c2FsdA==,i=1").ok);  // before client_first
  ScramClient other("pw", "abc");
  (void)other.client_first();
  EXPECT_FALSE(other.on_server_final("v=x").ok);
}

TEST(ScramServerSide, Rfc7677Vector) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  auto first = server.on_client_first(kClientFirst);
  ASSERT_TRUE(first.ok) << first.message;
  EXPECT_EQ(first.message, kServerFirst);
  auto done = server.on_client_final(kClientFinal);
  ASSERT_TRUE(done.ok) << done.message;
  EXPECT_EQ(done.message, kServerFinal);
}

TEST(ScramServerSide, UserNameInClientFirstIsIgnored) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  // A different n= changes client-first-bare and therefore the proof, but is not refused.
  auto first = server.on_client_first("n,,n=someone-else,r=rOprNGfwEbeRWgbNEkqO");
  EXPECT_TRUE(first.ok) << first.message;
}

TEST(ScramServerSide, WrongPasswordIsRefused) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  ScramClient client("pencil2", std::string(kClientNonce), "user");
  auto first = server.on_client_first(client.client_first());
  ASSERT_TRUE(first.ok);
  auto final_msg = client.on_server_first(first.message);
  ASSERT_TRUE(final_msg.ok);
  auto done = server.on_client_final(final_msg.message);
  EXPECT_FALSE(done.ok);
  EXPECT_EQ(done.message, "password authentication failed: SCRAM proof does not match");
}

TEST(ScramServerSide, TamperedProofIsRefused) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  ASSERT_TRUE(server.on_client_first(kClientFirst).ok);
  std::string tampered(kClientFinal);
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(server.on_client_final(tampered).ok);
}

TEST(ScramServerSide, TamperedNonceIsRefused) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  ASSERT_TRUE(server.on_client_first(kClientFirst).ok);
  auto done = server.on_client_final(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_FALSE(done.ok);
  EXPECT_EQ(done.message, "SCRAM nonce mismatch");
}

TEST(ScramServerSide, ChannelBindingRequestIsRefused) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  auto first = server.on_client_first("p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO");
  EXPECT_FALSE(first.ok);
  EXPECT_NE(first.message.find("channel binding"), std::string::npos);
}

TEST(ScramServerSide, YFlagIsAcceptedAndMustBeRepeatedInTheFinalMessage) {
  const ScramVerifier v = *parse_scram_verifier(make_scram_verifier("pw", "salt", 2));
  {
    ScramServer server(v, "srv");
    ASSERT_TRUE(server.on_client_first("y,,n=,r=cli").ok);
    // c=biws ("n,,") does not match the "y,," the client started with.
    auto done =
        server.on_client_final("c=biws,r=clisrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    EXPECT_FALSE(done.ok);
    EXPECT_EQ(done.message, "unexpected SCRAM channel-binding attribute in client-final-message");
  }
}

TEST(ScramServerSide, MalformedClientFirstMessages) {
  for (std::string_view bad : {
           "",
           "n",
           "n,",
           "x,,n=,r=abc",
           "n,a=someone,n=,r=abc",
           "n,,m=ext,n=,r=abc",
           "n,,r=abc",
           "n,,n=",
           "n,,n=,r=",
           "n,,n=,r=a,b",
           "n,,n=,r=ab\x7f",
           "n,,n=,x=abc",
           "n,,n=,r=abc,1=2",
           "n,,n=,r=abc,",
           "n,,n=,,r=abc",
       }) {
    ScramServer server(rfc_verifier(), std::string(kServerNonce));
    auto step = server.on_client_first(bad);
    EXPECT_FALSE(step.ok) << bad;
    EXPECT_FALSE(step.message.empty());
  }
  ScramServer with_nul(rfc_verifier(), std::string(kServerNonce));
  EXPECT_FALSE(with_nul.on_client_first(std::string_view("n,,n=,r=a\0b", 11)).ok);
}

TEST(ScramServerSide, ExtensionsInTheFirstMessageAreIgnored) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  EXPECT_TRUE(server.on_client_first("n,,n=user,r=abc,x=ext").ok);
}

TEST(ScramServerSide, MalformedClientFinalMessages) {
  const std::string nonce = std::string(kClientNonce) + std::string(kServerNonce);
  for (const std::string& bad : std::vector<std::string>{
           std::string(""),
           "r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",             // no c=
           "c=eSws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",      // y,,
           "c=biws,r=" + nonce,                                                          // no p=
           "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",       // b64
           "c=biws,r=" + nonce + ",p=AAAA",                                              // length
           "c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=y",  // after p
           std::string("c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),         // no r=
           std::string(kClientFinal) + ",",  // trailing comma
       }) {
    ScramServer server(rfc_verifier(), std::string(kServerNonce));
    ASSERT_TRUE(server.on_client_first(kClientFirst).ok);
    auto step = server.on_client_final(bad);
    EXPECT_FALSE(step.ok) << bad;
    EXPECT_FALSE(step.message.empty());
  }
}

TEST(ScramServerSide, ExtensionBeforeTheProofIsPartOfTheSignedMessage) {
  // RFC 5802 allows extensions between r= and p=; they are covered by the proof.
  const std::string verifier = make_scram_verifier("pw", "salt", 2);
  ScramServer server(*parse_scram_verifier(verifier), "srv");
  ScramClient client("pw", "cli");
  auto first = server.on_client_first(client.client_first());
  ASSERT_TRUE(first.ok);
  const std::string final_msg = client.on_server_first(first.message).message;
  std::string with_ext = final_msg;
  with_ext.insert(final_msg.find(",p="), ",x=ext");
  const ScramStep step = server.on_client_final(with_ext);
  EXPECT_FALSE(step.ok);  // parsed, but the proof did not cover x=ext
  EXPECT_EQ(step.message, "password authentication failed: SCRAM proof does not match");
}

TEST(ScramServerSide, OutOfOrderAndRepeatedCallsAreRefused) {
  ScramServer server(rfc_verifier(), std::string(kServerNonce));
  EXPECT_FALSE(server.on_client_final(kClientFinal).ok);
  ScramServer twice(rfc_verifier(), std::string(kServerNonce));
  ASSERT_TRUE(twice.on_client_first(kClientFirst).ok);
  EXPECT_FALSE(twice.on_client_first(kClientFirst).ok);
  ScramServer replay(rfc_verifier(), std::string(kServerNonce));
  ASSERT_TRUE(replay.on_client_first(kClientFirst).ok);
  ASSERT_TRUE(replay.on_client_final(kClientFinal).ok);
  EXPECT_FALSE(replay.on_client_final(kClientFinal).ok);
}

TEST(ScramServerSide, BadServerNonceIsRefused) {
  ScramServer server(rfc_verifier(), "has,comma");
  EXPECT_FALSE(server.on_client_first(kClientFirst).ok);
}

TEST(ScramServerSide, MockVerifierRunsTheExchangeAndRefusesTheProof) {
  const ScramVerifier a = mock_scram_verifier("nobody", "process secret", 4096);
  const ScramVerifier b = mock_scram_verifier("nobody", "process secret", 4096);
  EXPECT_EQ(a.salt, b.salt);  // stable per name, like a real verifier's
  EXPECT_EQ(a.salt.size(), 16u);
  EXPECT_NE(a.salt, mock_scram_verifier("somebody", "process secret", 4096).salt);
  ScramServer server(mock_scram_verifier("nobody", "s", 2), "srv");
  ScramClient client("guess", "cli");
  auto first = server.on_client_first(client.client_first());
  ASSERT_TRUE(first.ok) << first.message;
  auto final_msg = client.on_server_first(first.message);
  ASSERT_TRUE(final_msg.ok);
  EXPECT_FALSE(server.on_client_final(final_msg.message).ok);
}

TEST(RandomNonce, PrintableWithoutCommasAndDistinct) {
  const std::string a = random_nonce();
  const std::string b = random_nonce();
  EXPECT_EQ(a.size(), 24u);
  EXPECT_NE(a, b);
  for (char c : a) {
    EXPECT_TRUE(c > 0x20 && c < 0x7f && c != ',') << c;
  }
}

TEST(Md5, KnownVector) {
  // Obtained with Python:
  //   inner = hashlib.md5(b'secret' + b'app').hexdigest()
  //   'md5' + hashlib.md5(inner.encode() + b'\x01\x02\x03\x04').hexdigest()
  EXPECT_EQ(md5_password_response("app", "secret", "\x01\x02\x03\x04"),
            "md5911f527656472583a006e7727877b33e");
}

}  // namespace
}  // namespace tenantgate::proxy
