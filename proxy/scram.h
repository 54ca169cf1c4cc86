// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it ("SASL
// Authentication", protocol 55.3): the server side that verifies clients
// against stored verifiers, the client side that logs tenantgate into the
// backend, and md5 password hashing for older backends.
//
// Channel binding is not offered (gs2 header "n,,"); a client that requires it
// ("p=") is refused. Passwords are used as given (no SASLprep): for ASCII
// passwords this is what PostgreSQL does too.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

namespace tenantgate::proxy {

// A stored verifier: "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>",
// the format of pg_authid.rolpassword.
struct ScramVerifier {
  int iterations = 0;
  std::string salt;        // raw bytes
  std::string stored_key;  // raw 32 bytes
  std::string server_key;  // raw 32 bytes
};
[[nodiscard]] std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);
// Builds a verifier from a password (for `tenantgate hash-password`). salt is
// raw bytes (16 random bytes is what PostgreSQL uses); iterations must be > 0.
[[nodiscard]] std::string make_scram_verifier(std::string_view password, std::string_view salt,
                                              int iterations);

// A verifier for a principal that does not exist, so that an unknown name goes
// through the same exchange as a known one and fails only at the proof, as
// PostgreSQL's mock authentication does. The salt is derived from `secret`
// (random per process) and the name, so it is stable for a name; the keys are
// random, so no proof can match.
[[nodiscard]] ScramVerifier mock_scram_verifier(std::string_view username, std::string_view secret,
                                                int iterations);

struct ScramStep {
  bool ok = false;
  std::string message;  // the next message to send when ok; the reason otherwise
};

// The server side. One object per authentication exchange.
class ScramServer {
 public:
  // server_nonce: printable, no commas; random for real use (random_nonce()).
  ScramServer(ScramVerifier verifier, std::string server_nonce);

  // client-first-message -> server-first-message.
  [[nodiscard]] ScramStep on_client_first(std::string_view message);
  // client-final-message -> server-final-message ("v=..."), or !ok when the proof is wrong.
  [[nodiscard]] ScramStep on_client_final(std::string_view message);

 private:
  ScramVerifier verifier_;
  std::string server_nonce_;
  std::string gs2_header_;  // "n,," or "y,,": what the final message's c= must encode
  std::string client_first_bare_;
  std::string server_first_;
  std::string combined_nonce_;
  int state_ = 0;
};

// SaltedPassword = Hi(password, salt, iterations) (RFC 5802 section 3),
// remembered. The backend answers every login of the service role with the
// same salt and iteration count, so PBKDF2 (milliseconds of CPU at 4,096
// iterations) runs once per process instead of once per connection on an
// event loop: a storm of new connections costs HMACs only. Thread-safe;
// holds a few entries (the table is emptied when it reaches kMaxEntries).
class SaltedPasswordCache {
 public:
  static constexpr std::size_t kMaxEntries = 16;
  [[nodiscard]] std::string salted(std::string_view password, std::string_view salt,
                                   int iterations);
  [[nodiscard]] std::size_t size();

 private:
  std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::string> entries_;
};

// The client side. One object per authentication exchange.
class ScramClient {
 public:
  ScramClient(std::string password, std::string client_nonce);
  // The same, sending `username` in the client-first-message (saslname-escaped)
  // as RFC 5802 describes; PostgreSQL ignores it and libpq sends it empty.
  ScramClient(std::string password, std::string client_nonce, std::string username);

  // The client-first-message ("n,,n=,r=<nonce>"; "n=<username>" with the
  // three-argument constructor).
  [[nodiscard]] std::string client_first();
  // server-first-message -> client-final-message.
  [[nodiscard]] ScramStep on_server_first(std::string_view message);
  // Checks the server signature in server-final-message.
  [[nodiscard]] ScramStep on_server_final(std::string_view message);

  // Takes SaltedPassword from `cache` (which must outlive this object)
  // rather than computing it.
  void use_cache(SaltedPasswordCache* cache) { cache_ = cache; }

 private:
  SaltedPasswordCache* cache_ = nullptr;
  std::string password_;
  std::string client_nonce_;
  std::string username_;
  std::string client_first_bare_;
  std::string auth_message_;
  std::string salted_password_;
  int state_ = 0;
};

// 18 random bytes, base64: a nonce for either side.
[[nodiscard]] std::string random_nonce();

// PostgreSQL md5 authentication: "md5" + md5hex(md5hex(password + user) + salt).
[[nodiscard]] std::string md5_password_response(std::string_view user, std::string_view password,
                                                std::string_view salt4);

}  // namespace tenantgate::proxy
