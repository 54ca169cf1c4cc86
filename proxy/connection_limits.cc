#include "proxy/connection_limits.h"

#include <fmt/format.h>

#include <utility>

namespace tenantgate::proxy {
namespace {

void decrement(std::unordered_map<std::string, uint32_t>& counts, const std::string& key) {
  auto it = counts.find(key);
  if (it == counts.end()) return;
  if (--it->second == 0) counts.erase(it);
}

uint32_t count_of(const std::unordered_map<std::string, uint32_t>& counts, std::string_view key) {
  auto it = counts.find(std::string(key));
  return it == counts.end() ? 0 : it->second;
}

}  // namespace

ConnectionSlot::ConnectionSlot(ConnectionSlot&& other) noexcept
    : limits_(std::exchange(other.limits_, nullptr)),
      starting_(std::exchange(other.starting_, false)),
      source_(std::move(other.source_)),
      principal_(std::exchange(other.principal_, std::nullopt)),
      tenant_(std::exchange(other.tenant_, std::nullopt)) {}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& other) noexcept {
  if (this != &other) {
    release();
    limits_ = std::exchange(other.limits_, nullptr);
    starting_ = std::exchange(other.starting_, false);
    source_ = std::move(other.source_);
    principal_ = std::exchange(other.principal_, std::nullopt);
    tenant_ = std::exchange(other.tenant_, std::nullopt);
  }
  return *this;
}

ConnectionSlot::~ConnectionSlot() { release(); }

void ConnectionSlot::end_startup() {
  if (limits_ && starting_) limits_->end_startup(*this);
}

void ConnectionSlot::release() {
  if (limits_) limits_->release(*this);
  limits_ = nullptr;
}

std::optional<std::string> ConnectionLimits::admit(std::string_view source, ConnectionSlot& slot) {
  std::lock_guard lock(mutex_);
  const Settings& s = settings_;
  if (s.max_client_connections != 0 && connections_ >= s.max_client_connections) {
    return fmt::format("sorry, too many clients already (limits.max_client_connections = {})",
                       s.max_client_connections);
  }
  if (s.max_startups != 0 && startups_ >= s.max_startups) {
    return fmt::format(
        "sorry, too many connections are still starting up (limits.max_startups = {})",
        s.max_startups);
  }
  if (s.max_startups_per_source != 0 &&
      count_of(startups_by_source_, source) >= s.max_startups_per_source) {
    return fmt::format(
        "sorry, too many connections from this address are still starting up "
        "(limits.max_startups_per_source = {})",
        s.max_startups_per_source);
  }
  ++connections_;
  ++startups_;
  if (s.max_startups_per_source != 0) ++startups_by_source_[std::string(source)];
  slot.release();
  slot.limits_ = this;
  slot.starting_ = true;
  slot.source_ = std::string(source);
  return std::nullopt;
}

std::optional<std::string> ConnectionLimits::claim(ConnectionSlot& slot, std::string_view principal,
                                                   uint32_t principal_max,
                                                   std::optional<std::string_view> tenant) {
  std::lock_guard lock(mutex_);
  if (principal_max != 0 && count_of(by_principal_, principal) >= principal_max) {
    return fmt::format("too many connections for principal \"{}\" (max_connections = {})",
                       principal, principal_max);
  }
  const uint32_t tenant_max = settings_.max_connections_per_tenant;
  if (tenant && tenant_max != 0 && count_of(by_tenant_, *tenant) >= tenant_max) {
    return fmt::format(
        "too many connections for tenant \"{}\" (limits.max_connections_per_tenant = {})", *tenant,
        tenant_max);
  }
  ++by_principal_[std::string(principal)];
  slot.principal_ = std::string(principal);
  if (tenant && tenant_max != 0) {
    ++by_tenant_[std::string(*tenant)];
    slot.tenant_ = std::string(*tenant);
  }
  return std::nullopt;
}

void ConnectionLimits::end_startup(ConnectionSlot& slot) {
  std::lock_guard lock(mutex_);
  --startups_;
  if (settings_.max_startups_per_source != 0) decrement(startups_by_source_, slot.source_);
  slot.starting_ = false;
}

void ConnectionLimits::release(ConnectionSlot& slot) {
  std::lock_guard lock(mutex_);
  if (slot.starting_) {
    --startups_;
    if (settings_.max_startups_per_source != 0) decrement(startups_by_source_, slot.source_);
    slot.starting_ = false;
  }
  --connections_;
  if (slot.principal_) decrement(by_principal_, *slot.principal_);
  if (slot.tenant_) decrement(by_tenant_, *slot.tenant_);
  slot.principal_.reset();
  slot.tenant_.reset();
}

}  // namespace tenantgate::proxy
