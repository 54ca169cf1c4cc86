// Deterministic randomised robustness test: mutated and truncated bytes go to
// every decoder and parser. They must never crash (run it under ASan/UBSan),
// every view they return must lie inside their input, and the frame decoders
// must be consistent: a prefix of a decodable buffer needs more or fails for
// the same reason. The seed is printed; rerun with TENANTGATE_SEED=<seed>.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "proxy/frame_decoder.h"
#include "proxy/messages.h"
#include "proxy/scram.h"
#include "proxy/startup_identity.h"
#include "proxy/startup_packet.h"

namespace tenantgate::proxy {
namespace {

using namespace std::string_literals;

constexpr uint64_t kDefaultSeed = 20261126;
constexpr int kRounds = 20000;

uint64_t seed() {
  if (const char* env = std::getenv("TENANTGATE_SEED")) return std::strtoull(env, nullptr, 10);
  return kDefaultSeed;
}

class Robustness : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = seed();
    rng_.seed(seed_);
    RecordProperty("seed", std::to_string(seed_));
    std::cout << "[ seed     ] TENANTGATE_SEED=" << seed_ << "\n";
  }

  std::size_t below(std::size_t n) { return n == 0 ? 0 : rng_() % n; }

  std::string mutate(std::string s) {
    const int edits = 1 + static_cast<int>(below(4));
    for (int i = 0; i < edits; ++i) {
      switch (below(7)) {
        case 0:  // flip a byte
          if (!s.empty()) s[below(s.size())] = static_cast<char>(rng_());
          break;
        case 1:  // truncate
          s.resize(below(s.size() + 1));
          break;
        case 2:  // insert a byte
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(below(s.size() + 1)),
                   static_cast<char>(rng_()));
          break;
        case 3:  // delete a byte
          if (!s.empty()) s.erase(below(s.size()), 1);
          break;
        case 4:  // interesting bytes
          if (!s.empty()) s[below(s.size())] = "\x00\xff\x7f\x80,=\\ -"[below(9)];
          break;
        case 5:  // duplicate a slice
          if (!s.empty()) {
            const std::size_t at = below(s.size());
            s.insert(at, s.substr(at, below(8)));
          }
          break;
        default:  // overwrite four bytes with a random Int32 (length words, counts)
          if (s.size() >= 4) {
            const std::size_t at = below(s.size() - 3);
            const uint32_t v = static_cast<uint32_t>(rng_());
            for (int k = 0; k < 4; ++k) s[at + k] = static_cast<char>(v >> (24 - 8 * k));
          }
          break;
      }
    }
    return s;
  }

  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
};

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_frame(const DecodeResult& r, std::string_view buf, bool typed, std::size_t max) {
  switch (r.status) {
    case DecodeStatus::kMessage:
      ASSERT_LE(r.frame.total_size, buf.size());
      ASSERT_LE(r.frame.total_size, max);
      ASSERT_EQ(r.frame.body.size() + (typed ? 5 : 4), r.frame.total_size);
      ASSERT_TRUE(inside(r.frame.body, buf));
      ASSERT_EQ(r.frame.body.data(), buf.data() + (typed ? 5 : 4));
      break;
    case DecodeStatus::kNeedMore:
      ASSERT_TRUE(r.error.empty());
      break;
    case DecodeStatus::kError:
      ASSERT_FALSE(r.error.empty());
      break;
  }
  // Every prefix agrees: once the header is complete its verdict is fixed.
  const std::size_t header = typed ? 5 : 4;
  for (std::size_t n = 0; n < buf.size() && n <= header + 2; ++n) {
    const DecodeResult p = typed ? decode_message(buf.substr(0, n), max)
                                 : decode_startup_packet(buf.substr(0, n), max);
    if (n < header) {
      ASSERT_EQ(p.status, DecodeStatus::kNeedMore);
    } else if (r.status == DecodeStatus::kError) {
      ASSERT_EQ(p.status, DecodeStatus::kError);
      ASSERT_EQ(p.error, r.error);
    } else {
      ASSERT_NE(p.status, DecodeStatus::kError);
    }
  }
}

std::string frame(char type, const std::string& body) {
  return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + body;
}

std::vector<std::string> typed_corpus() {
  return {
      query_message("SELECT * FROM t WHERE id = 1"),
      encode_parse("s1", "SELECT $1", {23, 25}),
      frame('B', "p\x00s1\x00"s + be16(1) + be16(0) + be16(2) + be32(2) + "42" + be32(0xffffffff) +
                     be16(1) + be16(1)),
      frame('D', "Sstmt\x00"s),
      frame('C', "P\x00"s),
      password_message("secret"),
      sasl_initial_response("SCRAM-SHA-256", "n,,n=,r=abc"),
      sasl_response("c=biws,r=abc,p=xyz"),
      error_response("ERROR", "42501", "refused", "detail"),
      notice_response("WARNING", "01000", "hm"),
      authentication_ok(),
      authentication_md5("abcd"),
      authentication_sasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}),
      authentication_sasl_continue("r=abc,s=c2FsdA==,i=1"),
      authentication_sasl_final("v=abc"),
      backend_key_data(1, 2),
      ready_for_query('T'),
      parameter_status("server_version", "15.4"),
      terminate_message(),
  };
}

std::vector<std::string> startup_corpus() {
  return {
      encode_startup_message({{"user", "app"},
                              {"database", "db"},
                              {"options", "-c tenantgate.tenant=acme --tenantgate.user=4\\ 2"},
                              {"tenantgate.tenant", "acme"}}),
      be32(8) + be32(80877103),
      be32(8) + be32(80877104),
      encode_cancel_request(7, 9),
  };
}

bool large_iteration_count(std::string_view message) {
  for (auto at = message.find("i="); at != std::string_view::npos;
       at = message.find("i=", at + 1)) {
    std::size_t digits = 0;
    while (at + 2 + digits < message.size() && message[at + 2 + digits] >= '0' &&
           message[at + 2 + digits] <= '9') {
      ++digits;
    }
    if (digits > 3) return true;
  }
  return false;
}

void parse_everything(std::string_view body) {
  // Each parser on the same bytes: only "no crash, views inside" is checked.
  if (auto e = parse_error_fields(body)) {
    ASSERT_FALSE(e->sqlstate.empty() && e->message.empty() && e->severity.empty());
  }
  if (auto a = parse_auth_request(body)) {
    ASSERT_TRUE(inside(a->data, body));
    for (auto m : a->mechanisms) {
      ASSERT_TRUE(inside(m, body));
    }
  }
  (void)parse_backend_key_data(body);
  (void)parse_ready_for_query(body);
  if (auto s = parse_parameter_status(body)) {
    ASSERT_TRUE(inside(s->name, body));
    ASSERT_TRUE(inside(s->value, body));
  }
  if (auto s = parse_sasl_initial_response(body)) {
    ASSERT_TRUE(inside(s->mechanism, body));
    ASSERT_TRUE(inside(s->data, body));
  }
  if (auto p = parse_password_message(body)) {
    ASSERT_TRUE(inside(*p, body));
  }
  if (auto q = parse_query(body)) {
    ASSERT_TRUE(inside(*q, body));
    ASSERT_EQ(q->size() + 1, body.size());
    ASSERT_EQ(q->find('\0'), std::string_view::npos);
  }
  if (auto p = parse_parse(body)) {
    ASSERT_TRUE(inside(p->statement, body));
    ASSERT_TRUE(inside(p->query, body));
  }
  if (auto b = parse_bind(body)) {
    ASSERT_TRUE(inside(b->portal, body));
    for (const auto& v : b->params) {
      if (v) {
        ASSERT_TRUE(inside(*v, body));
      }
    }
    ASSERT_TRUE(b->param_formats.size() <= 1 || b->param_formats.size() == b->params.size());
  }
  if (auto d = parse_describe_or_close(body)) {
    ASSERT_TRUE(inside(d->name, body));
  }
  auto sp = parse_startup_packet(body);
  if (auto* p = std::get_if<StartupPacket>(&sp)) {
    if (p->kind == StartupPacket::Kind::kStartup) {
      ASSERT_NE(find_param(p->params, "user"), nullptr);
      auto id = extract_startup_identity(p->params, "tenantgate.tenant", "tenantgate.user");
      if (auto* ok = std::get_if<StartupIdentity>(&id)) {
        // What is forwarded carries no identity any more, and is stable.
        auto again =
            extract_startup_identity(ok->forwarded, "tenantgate.tenant", "tenantgate.user");
        auto* second = std::get_if<StartupIdentity>(&again);
        ASSERT_NE(second, nullptr);
        ASSERT_FALSE(second->tenant);
        ASSERT_FALSE(second->user);
        ASSERT_EQ(second->forwarded, ok->forwarded);
      }
    }
  } else {
    ASSERT_FALSE(std::get<StartupParseError>(sp).message.empty());
  }
}

TEST_F(Robustness, TypedFramesAndBodies) {
  const auto corpus = typed_corpus();
  for (const auto& m : corpus) {
    const DecodeResult r = decode_message(m, 1 << 20);
    ASSERT_EQ(r.status, DecodeStatus::kMessage) << m;
    ASSERT_EQ(r.frame.total_size, m.size());
  }
  for (int round = 0; round < kRounds; ++round) {
    const std::string buf = mutate(corpus[below(corpus.size())]);
    const std::size_t max = below(2) ? 1 << 20 : 1 + below(64);
    const DecodeResult r = decode_message(buf, max);
    ASSERT_NO_FATAL_FAILURE(check_frame(r, buf, true, max)) << "round " << round;
    ASSERT_NO_FATAL_FAILURE(parse_everything(buf.size() > 5 ? std::string_view(buf).substr(5) : ""))
        << "round " << round;
    if (r.status == DecodeStatus::kMessage) {
      ASSERT_NO_FATAL_FAILURE(parse_everything(r.frame.body));
    }
  }
}

TEST_F(Robustness, StartupPacketsAndIdentity) {
  const auto corpus = startup_corpus();
  for (const auto& m : corpus) {
    const DecodeResult r = decode_startup_packet(m, 10000);
    ASSERT_EQ(r.status, DecodeStatus::kMessage);
    ASSERT_TRUE(std::holds_alternative<StartupPacket>(parse_startup_packet(r.frame.body)));
  }
  for (int round = 0; round < kRounds; ++round) {
    const std::string buf = mutate(corpus[below(corpus.size())]);
    const std::size_t max = below(2) ? 10000 : 8 + below(64);
    const DecodeResult r = decode_startup_packet(buf, max);
    ASSERT_NO_FATAL_FAILURE(check_frame(r, buf, false, max)) << "round " << round;
    if (r.status == DecodeStatus::kMessage) {
      ASSERT_NO_FATAL_FAILURE(parse_everything(r.frame.body));
    }
    ASSERT_NO_FATAL_FAILURE(
        parse_everything(buf.size() > 4 ? std::string_view(buf).substr(4) : ""));
  }
}

TEST_F(Robustness, OptionsStrings) {
  const std::vector<std::string> corpus = {
      "-c tenantgate.tenant=acme -c tenantgate.user=42",
      "-ctenantgate.tenant=a\\ b --tenantgate.user=x -c search_path=s\\\\",
      "-ec tenantgate.tenant=a -B 8 -- -c x=y",
      "  \t-c  a=b\\  -c",
  };
  for (int round = 0; round < kRounds; ++round) {
    const StartupParams params = {{"user", "u"}, {"options", mutate(corpus[below(corpus.size())])}};
    auto id = extract_startup_identity(params, "tenantgate.tenant", "tenantgate.user");
    if (auto* ok = std::get_if<StartupIdentity>(&id)) {
      auto again = extract_startup_identity(ok->forwarded, "tenantgate.tenant", "tenantgate.user");
      auto* second = std::get_if<StartupIdentity>(&again);
      ASSERT_NE(second, nullptr) << "round " << round;
      ASSERT_FALSE(second->tenant) << "round " << round << ": " << params[1].second;
      ASSERT_FALSE(second->user) << "round " << round << ": " << params[1].second;
    } else {
      ASSERT_FALSE(std::get<StartupIdentityError>(id).message.empty());
    }
  }
}

TEST_F(Robustness, ScramMessages) {
  // Two iterations keep PBKDF2 cheap; mutations may raise it a little.
  const std::string verifier_text = make_scram_verifier("pw", "saltsalt", 2);
  const ScramVerifier verifier = *parse_scram_verifier(verifier_text);
  ScramServer server(verifier, "srvnonce");
  ScramClient client("pw", "clinonce");
  const std::string client_first = client.client_first();
  const std::string server_first = server.on_client_first(client_first).message;
  const std::string client_final = client.on_server_first(server_first).message;
  const std::string server_final = server.on_client_final(client_final).message;
  ASSERT_FALSE(server_final.empty());

  for (int round = 0; round < kRounds / 3; ++round) {
    {
      ScramServer s(verifier, "srvnonce");
      const ScramStep a = s.on_client_first(mutate(client_first));
      ASSERT_FALSE(a.message.empty());
      if (a.ok) {
        (void)s.on_client_final(mutate(client_final));
      }
    }
    {
      ScramServer s(verifier, "srvnonce");
      ASSERT_TRUE(s.on_client_first(client_first).ok);
      const std::string fin = mutate(client_final);
      const ScramStep b = s.on_client_final(fin);
      if (b.ok) {
        ASSERT_EQ(fin, client_final);  // base64 is canonical, so only the original passes
      } else {
        ASSERT_FALSE(b.message.empty());
      }
    }
    {
      ScramClient c("pw", "clinonce");
      (void)c.client_first();
      const std::string first = mutate(server_first);
      // A mutated iteration count could make PBKDF2 arbitrarily slow.
      if (!large_iteration_count(first) && c.on_server_first(first).ok) {
        (void)c.on_server_final(mutate(server_final));
      }
    }
    {
      ScramClient c("pw", "clinonce");
      (void)c.client_first();
      ASSERT_TRUE(c.on_server_first(server_first).ok);
      const std::string fin = mutate(server_final);
      const ScramStep b = c.on_server_final(fin);
      if (b.ok) {
        ASSERT_EQ(fin, server_final);
      }
    }
    (void)parse_scram_verifier(mutate(verifier_text));
  }
}

}  // namespace
}  // namespace tenantgate::proxy
