#include "proxy/backend_statements.h"

#include <functional>

namespace tenantgate::proxy {

std::size_t BackendStatements::Hash::operator()(const StatementDefinition& d) const {
  std::size_t h = std::hash<std::string>{}(d.sql);
  for (std::uint32_t t : d.param_types) h = h * 1099511628211ull ^ t;
  return h;
}

BackendStatements::Ensure BackendStatements::ensure(const StatementDefinition& definition) {
  Ensure out;
  if (auto it = entries_.find(definition); it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    it->second->batch = batch_;
    out.name = it->second->name;
    return out;
  }
  // Evict the least recently used statements not used in this batch.
  for (auto it = lru_.end(); entries_.size() >= capacity_ && it != lru_.begin();) {
    --it;
    if (it->batch == batch_) continue;
    out.close.push_back(it->name);
    entries_.erase(it->definition);
    it = lru_.erase(it);
  }
  lru_.push_front(Entry{definition, "tg_s" + std::to_string(next_name_++), batch_});
  entries_.emplace(definition, lru_.begin());
  out.name = lru_.front().name;
  out.parse = true;
  return out;
}

void BackendStatements::parse_failed(std::string_view name) {
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    if (it->name == name) {
      entries_.erase(it->definition);
      lru_.erase(it);
      return;
    }
  }
}

void BackendStatements::clear() {
  entries_.clear();
  lru_.clear();
}

std::optional<std::string> BackendStatements::name_of(const StatementDefinition& definition) const {
  auto it = entries_.find(definition);
  if (it == entries_.end()) return std::nullopt;
  return it->second->name;
}

}  // namespace tenantgate::proxy
