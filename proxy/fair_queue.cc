#include "proxy/fair_queue.h"

#include <algorithm>

namespace tenantgate::proxy {

double FairQueue::refilled_tokens(const Tenant& t, TimePoint now) const {
  if (limits_.ms_per_second == 0) return 0;
  const double seconds = std::chrono::duration<double>(now - t.refilled).count();
  if (seconds <= 0) return t.tokens_ms;
  return std::min(capacity_ms(), t.tokens_ms + seconds * limits_.ms_per_second);
}

void FairQueue::refill(Tenant& t, TimePoint now) const {
  t.tokens_ms = refilled_tokens(t, now);
  if (now > t.refilled) t.refilled = now;
}

FairQueue::Tenant& FairQueue::tenant(std::string_view name, TimePoint now) {
  auto it = tenants_.find(std::string(name));
  if (it == tenants_.end()) {
    it = tenants_.emplace(std::string(name), Tenant{}).first;
    it->second.tokens_ms = capacity_ms();
    it->second.refilled = now;
  }
  return it->second;
}

void FairQueue::maybe_forget(const std::string& name, TimePoint now) {
  auto it = tenants_.find(name);
  if (it == tenants_.end() || !it->second.queue.empty() || it->second.in_turn) return;
  if (refilled_tokens(it->second, now) >= capacity_ms()) tenants_.erase(it);
}

bool FairQueue::push(std::string_view name, std::uint64_t job, TimePoint now) {
  Tenant& t = tenant(name, now);
  if (t.queue.size() >= limits_.max_pending_per_tenant) return false;
  t.queue.push_back(Waiting{job, now});
  ++size_;
  if (!t.in_turn) {
    t.in_turn = true;
    turns_.emplace_back(name);
  }
  return true;
}

std::vector<FairQueue::Pick> FairQueue::take_expired(TimePoint now) {
  std::vector<Pick> expired;
  for (auto& name : turns_) {
    Tenant& t = tenants_.at(name);
    while (!t.queue.empty() && now - t.queue.front().enqueued >= limits_.queue_timeout) {
      expired.push_back(Pick{name, t.queue.front().job});
      t.queue.pop_front();
      --size_;
    }
  }
  // Tenants left with nothing queued lose their turn.
  for (auto it = turns_.begin(); it != turns_.end();) {
    Tenant& t = tenants_.at(*it);
    if (t.queue.empty()) {
      t.in_turn = false;
      std::string name = std::move(*it);
      it = turns_.erase(it);
      maybe_forget(name, now);
    } else {
      ++it;
    }
  }
  return expired;
}

std::optional<FairQueue::Pick> FairQueue::pop(TimePoint now) {
  const std::size_t n = turns_.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::string name = std::move(turns_.front());
    turns_.pop_front();
    Tenant& t = tenants_.at(name);
    refill(t, now);
    if (limits_.ms_per_second != 0 && t.tokens_ms <= 0) {
      turns_.push_back(std::move(name));  // over budget: its turn passes
      continue;
    }
    Pick pick{name, t.queue.front().job};
    t.queue.pop_front();
    --size_;
    if (t.queue.empty()) {
      t.in_turn = false;
    } else {
      turns_.push_back(std::move(name));
    }
    return pick;
  }
  return std::nullopt;
}

void FairQueue::charge(std::string_view name, Duration cpu, TimePoint now) {
  if (limits_.ms_per_second == 0) return;
  Tenant& t = tenant(name, now);
  refill(t, now);
  t.tokens_ms -= std::chrono::duration<double, std::milli>(cpu).count();
  // Tenants that come and go would otherwise accumulate: drop those whose
  // bucket has refilled, now and then.
  if (tenants_.size() > 2 * turns_.size() + 64) {
    for (auto it = tenants_.begin(); it != tenants_.end();) {
      const Tenant& idle = it->second;
      if (!idle.in_turn && refilled_tokens(idle, now) >= capacity_ms()) {
        it = tenants_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

std::optional<FairQueue::TimePoint> FairQueue::next_event(TimePoint now) const {
  std::optional<TimePoint> next;
  auto consider = [&](TimePoint at) {
    if (!next || at < *next) next = at;
  };
  for (const auto& name : turns_) {
    const Tenant& t = tenants_.at(name);
    consider(t.queue.front().enqueued + limits_.queue_timeout);
    if (limits_.ms_per_second == 0) {
      consider(now);
      continue;
    }
    const double tokens = refilled_tokens(t, now);
    if (tokens > 0) {
      consider(now);
    } else {
      // Just past the moment the debt is paid off.
      const double ms = (-tokens / limits_.ms_per_second) * 1000.0 + 0.01;
      consider(now +
               std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(ms)));
    }
  }
  return next;
}

std::size_t FairQueue::pending(std::string_view name) const {
  auto it = tenants_.find(std::string(name));
  return it == tenants_.end() ? 0 : it->second.queue.size();
}

double FairQueue::budget_ms(std::string_view name, TimePoint now) const {
  auto it = tenants_.find(std::string(name));
  if (it == tenants_.end()) return capacity_ms();
  return refilled_tokens(it->second, now);
}

}  // namespace tenantgate::proxy
