#include "proxy/backend_pool.h"

#include <algorithm>
#include <limits>

namespace tenantgate::proxy {

std::size_t BackendPool::cap() const {
  const std::size_t per_tenant =
      settings_.max_per_tenant != 0 ? settings_.max_per_tenant : settings_.size;
  return per_tenant != 0 ? per_tenant : std::numeric_limits<std::size_t>::max();
}

std::size_t BackendPool::servable_waiters() const {
  std::size_t n = 0;
  for (const std::string& name : turns_) {
    const Tenant& t = tenants_.at(name);
    if (!under_cap(t)) continue;
    n += std::min(t.queue.size(), cap() - t.held);
  }
  return n;
}

bool BackendPool::others_waiting_first(std::string_view tenant) const {
  if (waiting_ == 0) return false;
  auto it = tenants_.find(std::string(tenant));
  if (it != tenants_.end() && !it->second.queue.empty()) return true;  // its own, first
  return servable_waiters() > 0;
}

BackendPool::Acquired BackendPool::acquire(WaiterId waiter, std::string_view tenant,
                                           TimePoint now) {
  std::string name(tenant);
  Tenant& t = tenants_[name];
  if (!idle_.empty() && under_cap(t) && !others_waiting_first(name)) {
    const ConnectionId id = idle_.back();
    grant(id, name, now);
    return Acquired{id};
  }
  t.queue.push_back(Waiter{waiter, now});
  ++waiting_;
  waiter_tenant_.emplace(waiter, name);
  if (!t.in_turn) {
    t.in_turn = true;
    turns_.push_back(name);
  }
  return Acquired{};
}

bool BackendPool::cancel(WaiterId waiter) {
  auto it = waiter_tenant_.find(waiter);
  if (it == waiter_tenant_.end()) return false;
  const std::string name = std::move(it->second);
  waiter_tenant_.erase(it);
  auto failed = std::find(failed_.begin(), failed_.end(), waiter);
  if (failed != failed_.end()) {
    failed_.erase(failed);
    forget_tenant_if_unused(name);
    return true;
  }
  Tenant& t = tenants_.at(name);
  auto q =
      std::find_if(t.queue.begin(), t.queue.end(), [&](const Waiter& w) { return w.id == waiter; });
  if (q != t.queue.end()) {
    t.queue.erase(q);
    --waiting_;
  }
  if (t.queue.empty()) drop_from_turns(name);
  forget_tenant_if_unused(name);
  return true;
}

void BackendPool::grant(ConnectionId id, const std::string& tenant, TimePoint) {
  remove_idle(id);
  Connection& c = connections_.at(id);
  c.state = State::kActive;
  c.tenant = tenant;
  ++tenants_[tenant].held;
}

void BackendPool::remove_idle(ConnectionId id) {
  auto it = std::find(idle_.begin(), idle_.end(), id);
  if (it != idle_.end()) idle_.erase(it);
}

void BackendPool::release(ConnectionId id, bool reusable, TimePoint now) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.state != State::kActive) return;
  Connection& c = it->second;
  const std::string tenant = std::move(c.tenant);
  c.tenant.clear();
  Tenant& t = tenants_.at(tenant);
  --t.held;
  forget_tenant_if_unused(tenant);
  if (!reusable || now - c.created >= settings_.max_lifetime) {
    c.state = State::kClosing;
    return;
  }
  c.state = State::kIdle;
  c.idle_since = now;
  idle_.push_back(id);
}

void BackendPool::opened(ConnectionId id, TimePoint now) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.state != State::kOpening) return;
  it->second.state = State::kIdle;
  it->second.created = now;
  it->second.idle_since = now;
  idle_.push_back(id);
  refill_after_.reset();
}

void BackendPool::open_failed(ConnectionId id, TimePoint now) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.state != State::kOpening) return;
  connections_.erase(it);
  refill_after_ = now + settings_.retry_delay;
  // The oldest request that an opening connection would have served.
  Tenant* oldest = nullptr;
  std::string oldest_name;
  for (const std::string& name : turns_) {
    Tenant& t = tenants_.at(name);
    if (t.queue.empty() || !under_cap(t)) continue;
    if (oldest == nullptr || t.queue.front().since < oldest->queue.front().since) {
      oldest = &t;
      oldest_name = name;
    }
  }
  if (oldest == nullptr) return;
  failed_.push_back(oldest->queue.front().id);
  oldest->queue.pop_front();
  --waiting_;
  if (oldest->queue.empty()) drop_from_turns(oldest_name);
}

void BackendPool::idle_died(ConnectionId id, TimePoint) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.state != State::kIdle) return;
  remove_idle(id);
  connections_.erase(it);
}

void BackendPool::drop_from_turns(const std::string& name) {
  auto it = std::find(turns_.begin(), turns_.end(), name);
  if (it != turns_.end()) turns_.erase(it);
  tenants_.at(name).in_turn = false;
}

void BackendPool::forget_tenant_if_unused(const std::string& name) {
  auto it = tenants_.find(name);
  if (it == tenants_.end()) return;
  const Tenant& t = it->second;
  if (t.held == 0 && t.queue.empty() && !t.in_turn) tenants_.erase(it);
}

BackendPool::Tenant* BackendPool::next_in_turn(std::string& name) {
  for (std::size_t i = 0, n = turns_.size(); i < n; ++i) {
    std::string candidate = std::move(turns_.front());
    turns_.pop_front();
    Tenant& t = tenants_.at(candidate);
    turns_.push_back(candidate);
    if (!t.queue.empty() && under_cap(t)) {
      name = std::move(candidate);
      return &t;
    }
  }
  return nullptr;
}

void BackendPool::expire_waiters(TimePoint now, std::vector<Action>& out) {
  for (auto it = turns_.begin(); it != turns_.end();) {
    Tenant& t = tenants_.at(*it);
    while (!t.queue.empty() && now - t.queue.front().since >= settings_.acquire_timeout) {
      const WaiterId id = t.queue.front().id;
      out.push_back(Action{Action::Kind::kTimeout, 0, id, *it});
      waiter_tenant_.erase(id);
      t.queue.pop_front();
      --waiting_;
    }
    if (t.queue.empty()) {
      t.in_turn = false;
      const std::string name = std::move(*it);
      it = turns_.erase(it);
      forget_tenant_if_unused(name);
    } else {
      ++it;
    }
  }
}

void BackendPool::retire_idle(TimePoint now, std::vector<Action>& out) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (now - connections_.at(*it).created >= settings_.max_lifetime) {
      out.push_back(Action{Action::Kind::kClose, *it, 0, {}});
      connections_.erase(*it);
      it = idle_.erase(it);
    } else {
      ++it;
    }
  }
  // Oldest idle first; min_idle of them stay.
  while (idle_.size() > settings_.min_idle &&
         now - connections_.at(idle_.front()).idle_since >= settings_.idle_timeout) {
    out.push_back(Action{Action::Kind::kClose, idle_.front(), 0, {}});
    connections_.erase(idle_.front());
    idle_.pop_front();
  }
}

BackendPool::ConnectionId BackendPool::begin_open(std::vector<Action>& out) {
  const ConnectionId id = next_id_++;
  connections_.emplace(id, Connection{});
  out.push_back(Action{Action::Kind::kOpen, id, 0, {}});
  return id;
}

std::vector<BackendPool::Action> BackendPool::poll(TimePoint now) {
  std::vector<Action> out;
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->second.state == State::kClosing) {
      out.push_back(Action{Action::Kind::kClose, it->first, 0, {}});
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
  retire_idle(now, out);
  expire_waiters(now, out);
  while (!failed_.empty()) {
    const WaiterId id = failed_.front();
    failed_.pop_front();
    auto t = waiter_tenant_.find(id);
    std::string tenant = t != waiter_tenant_.end() ? std::move(t->second) : std::string();
    if (t != waiter_tenant_.end()) waiter_tenant_.erase(t);
    forget_tenant_if_unused(tenant);
    out.push_back(Action{Action::Kind::kFail, 0, id, std::move(tenant)});
  }
  std::string name;
  while (!idle_.empty()) {
    Tenant* t = next_in_turn(name);
    if (t == nullptr) break;
    const WaiterId waiter = t->queue.front().id;
    t->queue.pop_front();
    --waiting_;
    waiter_tenant_.erase(waiter);
    const ConnectionId id = idle_.back();
    grant(id, name, now);
    out.push_back(Action{Action::Kind::kGrant, id, waiter, name});
    if (t->queue.empty()) drop_from_turns(name);
  }
  std::size_t opening = 0;
  for (const auto& [id, c] : connections_) opening += c.state == State::kOpening;
  const std::size_t deficit =
      settings_.min_idle > idle_.size() + opening ? settings_.min_idle - idle_.size() - opening : 0;
  const std::size_t servable = servable_waiters();
  std::size_t want = servable > opening ? servable - opening : 0;
  if (!refill_after_ || now >= *refill_after_) want += deficit;
  while (want > 0 && (settings_.size == 0 || open_or_opening() < settings_.size)) {
    begin_open(out);
    --want;
  }
  return out;
}

std::optional<BackendPool::TimePoint> BackendPool::next_deadline() const {
  std::optional<TimePoint> next;
  auto consider = [&](TimePoint at) {
    if (!next || at < *next) next = at;
  };
  for (const std::string& name : turns_) {
    const Tenant& t = tenants_.at(name);
    if (!t.queue.empty()) consider(t.queue.front().since + settings_.acquire_timeout);
  }
  for (ConnectionId id : idle_) consider(connections_.at(id).created + settings_.max_lifetime);
  if (idle_.size() > settings_.min_idle) {
    consider(connections_.at(idle_.front()).idle_since + settings_.idle_timeout);
  }
  if (refill_after_ && settings_.min_idle > idle_.size()) consider(*refill_after_);
  return next;
}

BackendPool::Counts BackendPool::counts() const {
  Counts c;
  for (const auto& [id, conn] : connections_) {
    switch (conn.state) {
      case State::kOpening:
        ++c.opening;
        break;
      case State::kIdle:
        ++c.idle;
        break;
      case State::kActive:
        ++c.active;
        break;
      case State::kClosing:
        break;
    }
  }
  c.waiting = waiting_;
  return c;
}

std::size_t BackendPool::held_by(std::string_view tenant) const {
  auto it = tenants_.find(std::string(tenant));
  return it == tenants_.end() ? 0 : it->second.held;
}

std::size_t BackendPool::waiting_for(std::string_view tenant) const {
  auto it = tenants_.find(std::string(tenant));
  return it == tenants_.end() ? 0 : it->second.queue.size();
}

}  // namespace tenantgate::proxy
