// The principals in force: an immutable snapshot that a session reads once at
// start-up and that a reload (SIGHUP) replaces by swapping one pointer. A
// session keeps the snapshot it authenticated against for its whole life.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "config/config.h"

namespace tenantgate::proxy {

using PrincipalSnapshot = std::shared_ptr<const std::vector<config::Principal>>;

// The principals of a loaded config, sharing its ownership (no copy).
[[nodiscard]] inline PrincipalSnapshot principals_of(std::shared_ptr<const config::Config> config) {
  const auto* principals = &config->principals;
  return PrincipalSnapshot(std::move(config), principals);
}

class PrincipalStore {
 public:
  explicit PrincipalStore(PrincipalSnapshot initial) : current_(std::move(initial)) {}

  [[nodiscard]] PrincipalSnapshot get() const { return current_.load(); }
  void set(PrincipalSnapshot next) { current_.store(std::move(next)); }

 private:
  std::atomic<PrincipalSnapshot> current_;
};

}  // namespace tenantgate::proxy
