// Session mode with a capped pool (`[pool] mode = "session"`, `size` > 0):
// a client holds one of `size` backend slots from its login to its
// disconnect and opens its own backend connection in it, as PgBouncer's
// session pooling holds a server connection per client. Clients beyond
// `size` wait, one queue per tenant with tenants taking turns, a tenant
// holds at most `max_per_tenant` slots, and a client still waiting after
// `acquire_timeout_ms` is refused at login with 53300. A slot is not a
// connection: backends are not yet handed from one client to the next (a
// slot is closed when its client leaves), so `min_idle`, `idle_timeout_ms`
// and `max_lifetime_ms` have nothing to act on.
//
// Thread-safety and lifetime: those of BackendPoolShell.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/asio.h"
#include "proxy/backend_pool.h"
#include "proxy/backend_pool_shell.h"

namespace tenantgate::proxy {

struct BackendSlot {};
using SessionSlots = BackendPoolShell<BackendSlot>;

// The pool's settings from [pool].
[[nodiscard]] inline BackendPool::Settings pool_settings(const config::Pool& pool) {
  BackendPool::Settings s;
  s.size = pool.size;
  s.min_idle = pool.min_idle;
  s.idle_timeout = std::chrono::milliseconds(pool.idle_timeout_ms);
  s.max_lifetime = std::chrono::milliseconds(pool.max_lifetime_ms);
  s.acquire_timeout = std::chrono::milliseconds(pool.acquire_timeout_ms);
  s.max_per_tenant = pool.max_per_tenant;
  return s;
}

// The slots of session mode, or nullptr when [pool] sets no size (every
// client gets a backend at once).
[[nodiscard]] inline std::unique_ptr<SessionSlots> make_session_slots(
    std::vector<asio::any_io_executor> executors, const config::Pool& pool) {
  if (pool.mode != config::PoolMode::kSession || pool.size == 0) return nullptr;
  BackendPool::Settings settings = pool_settings(pool);
  settings.min_idle = 0;
  return std::make_unique<SessionSlots>(
      std::move(executors), settings,
      [](std::string&) -> awaitable<std::unique_ptr<BackendSlot>> {
        co_return std::make_unique<BackendSlot>();
      },
      [](BackendSlot&) { return true; });
}

}  // namespace tenantgate::proxy
