#include "proxy/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>
#include <stdexcept>
#include <utility>

namespace tenantgate::proxy {
namespace {

constexpr std::size_t kKeyLen = 32;  // SHA-256
constexpr std::string_view kMechanism = "SCRAM-SHA-256";

// ---- base64 (RFC 4648, with padding, no line breaks) ----

std::string b64_encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool is_b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// EVP_DecodeBlock skips whitespace and counts padding as output bytes, so the
// text is validated here: whole quads, alphabet only, '=' only at the end,
// canonical.
std::optional<std::string> b64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  if (pad == 1 && text.back() != '=') return std::nullopt;
  for (std::size_t i = 0; i < text.size() - pad; ++i) {
    if (!is_b64_char(text[i])) return std::nullopt;
  }
  if (text.empty()) return std::string();
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  // Canonical form only: unused low bits of the last character must be zero,
  // so that each value has exactly one accepted spelling.
  if (b64_encode(out) != text) return std::nullopt;
  return out;
}

// ---- SHA-256 primitives ----

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA-256 failed");
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string salted_password(std::string_view password, std::string_view salt, int iterations) {
  std::string out(kKeyLen, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    throw std::runtime_error("PBKDF2 failed");
  }
  return out;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

bool equal_ct(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- message syntax (RFC 5802 section 7) ----

// printable = %x21-2B / %x2D-7E: visible ASCII except ','.
bool is_printable(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::optional<int> parse_positive_int(std::string_view s) {
  int v = 0;
  if (s.empty() || s[0] == '0') return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

// Reads comma-separated "<name>=<value>" attributes. A comma must be followed
// by another attribute, so a trailing comma is left over as garbage.
class AttrReader {
 public:
  explicit AttrReader(std::string_view s) : rest_(s) {}

  bool at_end() const { return rest_.empty(); }
  char peek() const { return rest_.empty() ? '\0' : rest_[0]; }
  std::string_view rest() const { return rest_; }

  // The value of attribute `name`, or nullopt when the next attribute is another one.
  std::optional<std::string_view> expect(char name) {
    std::string_view r = after_separator();
    if (r.size() < 2 || r[0] != name || r[1] != '=') return std::nullopt;
    return take_value(r);
  }

  // Any attribute: a letter, '=', a value.
  std::optional<std::pair<char, std::string_view>> any() {
    std::string_view r = after_separator();
    if (r.size() < 2 || r[1] != '=') return std::nullopt;
    const char name = r[0];
    if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z'))) return std::nullopt;
    return std::pair{name, take_value(r)};
  }

 private:
  std::string_view after_separator() const {
    if (first_) return rest_;
    if (rest_.empty() || rest_[0] != ',') return {};
    return rest_.substr(1);
  }

  std::string_view take_value(std::string_view r) {
    r.remove_prefix(2);
    const auto value = r.substr(0, r.find(','));
    rest_ = r.substr(value.size());
    first_ = false;
    return value;
  }

  std::string_view rest_;
  bool first_ = true;
};

ScramStep refuse(std::string reason) { return ScramStep{false, std::move(reason)}; }
ScramStep send(std::string message) { return ScramStep{true, std::move(message)}; }

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// saslname: ',' and '=' are escaped as "=2C" and "=3D".
std::string encode_saslname(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

enum ServerState { kServerExpectFirst = 0, kServerExpectFinal = 1, kServerDone = 2 };
enum ClientState { kClientInit = 0, kClientSentFirst = 1, kClientSentFinal = 2, kClientDone = 3 };

}  // namespace

std::optional<ScramVerifier> parse_scram_verifier(std::string_view text) {
  // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (text.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  const auto colon1 = text.find(':');
  const auto dollar = text.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1) {
    return std::nullopt;
  }
  const auto colon2 = text.find(':', dollar);
  if (colon2 == std::string_view::npos) return std::nullopt;
  ScramVerifier v;
  auto iterations = parse_positive_int(text.substr(0, colon1));
  auto salt = b64_decode(text.substr(colon1 + 1, dollar - colon1 - 1));
  auto stored = b64_decode(text.substr(dollar + 1, colon2 - dollar - 1));
  auto server = b64_decode(text.substr(colon2 + 1));
  if (!iterations || !salt || salt->empty() || !stored || stored->size() != kKeyLen || !server ||
      server->size() != kKeyLen) {
    return std::nullopt;
  }
  v.iterations = *iterations;
  v.salt = std::move(*salt);
  v.stored_key = std::move(*stored);
  v.server_key = std::move(*server);
  return v;
}

std::string make_scram_verifier(std::string_view password, std::string_view salt, int iterations) {
  const std::string salted = salted_password(password, salt, iterations);
  const std::string stored_key = sha256(hmac_sha256(salted, "Client Key"));
  const std::string server_key = hmac_sha256(salted, "Server Key");
  return std::string(kMechanism) + "$" + std::to_string(iterations) + ":" + b64_encode(salt) + "$" +
         b64_encode(stored_key) + ":" + b64_encode(server_key);
}

ScramVerifier mock_scram_verifier(std::string_view username, std::string_view secret,
                                  int iterations) {
  ScramVerifier v;
  v.iterations = iterations;
  v.salt = sha256(std::string(secret) + std::string(username)).substr(0, 16);
  v.stored_key.assign(kKeyLen, '\0');
  v.server_key.assign(kKeyLen, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(v.stored_key.data()), kKeyLen) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(v.server_key.data()), kKeyLen) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return v;
}

// ---- server ----

ScramServer::ScramServer(ScramVerifier verifier, std::string server_nonce)
    : verifier_(std::move(verifier)), server_nonce_(std::move(server_nonce)) {}

ScramStep ScramServer::on_client_first(std::string_view message) {
  if (state_ != kServerExpectFirst) return refuse("unexpected SCRAM client-first-message");
  state_ = kServerDone;  // any failure ends the exchange
  if (server_nonce_.empty() || !is_printable(server_nonce_)) {
    return refuse("invalid SCRAM server nonce");
  }
  if (verifier_.stored_key.size() != kKeyLen || verifier_.server_key.size() != kKeyLen ||
      verifier_.iterations <= 0) {
    return refuse("invalid SCRAM verifier");
  }
  if (has_nul(message)) return refuse("malformed SCRAM message: NUL byte in client-first-message");
  // gs2-header: gs2-cbind-flag "," [authzid] ","
  if (message.empty()) return refuse("malformed SCRAM message: empty client-first-message");
  switch (message[0]) {
    case 'n':
    case 'y':  // the client could bind but thinks we cannot: right, we do not offer PLUS
      break;
    case 'p':
      return refuse(
          "the client requires SCRAM channel binding, which tenantgate does not support "
          "(use channel_binding=disable or prefer)");
    default:
      return refuse("malformed SCRAM message: unexpected channel-binding flag");
  }
  if (message.size() < 2 || message[1] != ',') {
    return refuse("malformed SCRAM message: comma expected after channel-binding flag");
  }
  if (message.size() >= 3 && message[2] == 'a') {
    return refuse("client uses authorization identity, but it is not supported");
  }
  if (message.size() < 3 || message[2] != ',') {
    return refuse("malformed SCRAM message: comma expected after gs2 header");
  }
  const std::string_view gs2_header = message.substr(0, 3);
  const std::string_view bare = message.substr(3);
  AttrReader r(bare);
  if (r.peek() == 'm') return refuse("client requires an unsupported SCRAM extension");
  // The user name is ignored, as PostgreSQL does: the start-up packet's user is the one.
  if (!r.expect('n')) return refuse("malformed SCRAM message: user name attribute expected");
  auto nonce = r.expect('r');
  if (!nonce) return refuse("malformed SCRAM message: nonce attribute expected");
  if (nonce->empty() || !is_printable(*nonce)) {
    return refuse("malformed SCRAM message: empty or non-printable nonce");
  }
  while (!r.at_end()) {
    if (!r.any()) {
      return refuse("malformed SCRAM message: invalid attribute in client-first-message");
    }
  }
  gs2_header_ = std::string(gs2_header);
  client_first_bare_ = std::string(bare);
  combined_nonce_ = std::string(*nonce) + server_nonce_;
  server_first_ = "r=" + combined_nonce_ + ",s=" + b64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = kServerExpectFinal;
  return send(server_first_);
}

ScramStep ScramServer::on_client_final(std::string_view message) {
  if (state_ != kServerExpectFinal) return refuse("unexpected SCRAM client-final-message");
  state_ = kServerDone;
  if (has_nul(message)) return refuse("malformed SCRAM message: NUL byte in client-final-message");
  AttrReader r(message);
  auto cbind = r.expect('c');
  if (!cbind) return refuse("malformed SCRAM message: channel-binding attribute expected");
  auto cbind_raw = b64_decode(*cbind);
  if (!cbind_raw || *cbind_raw != gs2_header_) {
    return refuse("unexpected SCRAM channel-binding attribute in client-final-message");
  }
  auto nonce = r.expect('r');
  if (!nonce) return refuse("malformed SCRAM message: nonce attribute expected");
  if (*nonce != combined_nonce_) return refuse("SCRAM nonce mismatch");
  // Extensions may follow; the proof is last.
  std::size_t proof_at = 0;
  std::optional<std::pair<char, std::string_view>> attr;
  for (;;) {
    proof_at = message.size() - r.rest().size();
    attr = r.any();
    if (!attr) return refuse("malformed SCRAM message: proof attribute expected");
    if (attr->first == 'p') break;
  }
  if (!r.at_end()) return refuse("malformed SCRAM message: garbage after the proof");
  auto proof = b64_decode(attr->second);
  if (!proof || proof->size() != kKeyLen) {
    return refuse("malformed SCRAM message: malformed proof in client-final-message");
  }
  // The message without ",p=...": proof_at points at that comma.
  const std::string_view without_proof = message.substr(0, proof_at);
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const std::string client_signature = hmac_sha256(verifier_.stored_key, auth_message);
  const std::string client_key = xor_bytes(*proof, client_signature);
  if (!equal_ct(sha256(client_key), verifier_.stored_key)) {
    return refuse("password authentication failed: SCRAM proof does not match");
  }
  return send("v=" + b64_encode(hmac_sha256(verifier_.server_key, auth_message)));
}

// ---- client ----

ScramClient::ScramClient(std::string password, std::string client_nonce)
    : password_(std::move(password)), client_nonce_(std::move(client_nonce)) {}

ScramClient::ScramClient(std::string password, std::string client_nonce, std::string username)
    : password_(std::move(password)),
      client_nonce_(std::move(client_nonce)),
      username_(std::move(username)) {}

std::string ScramClient::client_first() {
  client_first_bare_ = "n=" + encode_saslname(username_) + ",r=" + client_nonce_;
  state_ = kClientSentFirst;
  return "n,," + client_first_bare_;
}

ScramStep ScramClient::on_server_first(std::string_view message) {
  if (state_ != kClientSentFirst) return refuse("unexpected SCRAM server-first-message");
  state_ = kClientDone;
  if (has_nul(message)) return refuse("malformed SCRAM message: NUL byte in server-first-message");
  AttrReader r(message);
  if (auto err = r.expect('e')) return refuse("SCRAM server error: " + std::string(*err));
  if (r.peek() == 'm') return refuse("server requires an unsupported SCRAM extension");
  auto nonce = r.expect('r');
  if (!nonce) return refuse("malformed SCRAM message: nonce attribute expected");
  if (nonce->size() <= client_nonce_.size() ||
      nonce->substr(0, client_nonce_.size()) != client_nonce_ || !is_printable(*nonce)) {
    return refuse("invalid SCRAM response: nonce mismatch");
  }
  auto salt_b64 = r.expect('s');
  if (!salt_b64) return refuse("malformed SCRAM message: salt attribute expected");
  auto salt = b64_decode(*salt_b64);
  if (!salt || salt->empty()) return refuse("malformed SCRAM message: invalid salt");
  auto iter_text = r.expect('i');
  if (!iter_text) return refuse("malformed SCRAM message: iteration count attribute expected");
  auto iterations = parse_positive_int(*iter_text);
  if (!iterations) return refuse("malformed SCRAM message: invalid iteration count");
  if (!r.at_end()) return refuse("malformed SCRAM message: garbage at end of server-first-message");

  salted_password_ = cache_ ? cache_->salted(password_, *salt, *iterations)
                            : salted_password(password_, *salt, *iterations);
  const std::string client_key = hmac_sha256(salted_password_, "Client Key");
  const std::string stored_key = sha256(client_key);
  const std::string without_proof = "c=" + b64_encode("n,,") + ",r=" + std::string(*nonce);
  auth_message_ = client_first_bare_ + "," + std::string(message) + "," + without_proof;
  const std::string proof = xor_bytes(client_key, hmac_sha256(stored_key, auth_message_));
  state_ = kClientSentFinal;
  return send(without_proof + ",p=" + b64_encode(proof));
}

ScramStep ScramClient::on_server_final(std::string_view message) {
  if (state_ != kClientSentFinal) return refuse("unexpected SCRAM server-final-message");
  state_ = kClientDone;
  if (has_nul(message)) return refuse("malformed SCRAM message: NUL byte in server-final-message");
  AttrReader r(message);
  if (auto err = r.expect('e')) return refuse("SCRAM server error: " + std::string(*err));
  auto verifier = r.expect('v');
  if (!verifier) return refuse("malformed SCRAM message: verifier attribute expected");
  if (!r.at_end()) return refuse("malformed SCRAM message: garbage at end of server-final-message");
  auto signature = b64_decode(*verifier);
  if (!signature || signature->size() != kKeyLen) {
    return refuse("malformed SCRAM message: invalid server signature encoding");
  }
  const std::string server_key = hmac_sha256(salted_password_, "Server Key");
  if (!equal_ct(*signature, hmac_sha256(server_key, auth_message_))) {
    return refuse("invalid SCRAM server signature: the server does not know the password");
  }
  return send({});
}

std::string SaltedPasswordCache::salted(std::string_view password, std::string_view salt,
                                        int iterations) {
  auto key = std::make_tuple(std::string(password), std::string(salt), iterations);
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) return it->second;
  }
  std::string value = salted_password(password, salt, iterations);
  std::lock_guard lock(mutex_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_.emplace(std::move(key), value);
  return value;
}

std::size_t SaltedPasswordCache::size() {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::string random_nonce() {
  unsigned char raw[18];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  return b64_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
}

std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::string_view salt4) {
  const auto md5_hex = [](std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1) {
      throw std::runtime_error("MD5 failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 0xf]);
    }
    return out;
  };
  return "md5" + md5_hex(md5_hex(std::string(password) + std::string(user)) + std::string(salt4));
}

}  // namespace tenantgate::proxy
