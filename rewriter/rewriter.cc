#include "rewriter/rewriter.h"

#include <pthread.h>

#include <stdexcept>

#include "rewriter/rewrite_template.h"

namespace tenantgate::rewriter {

RewriteResult RewriteResult::ok(Rewritten r) {
  RewriteResult result;
  result.value_ = std::move(r);
  return result;
}

RewriteResult RewriteResult::refused(std::string sqlstate, std::string message) {
  RewriteResult result;
  result.refusal_ = Refusal{std::move(sqlstate), std::move(message)};
  return result;
}

IdentityShape identity_shape(const policy::Identity& identity) {
  return IdentityShape{identity.user.has_value(), identity.database};
}

RewriteResult Rewriter::rewrite(std::string_view sql, const policy::Identity& identity,
                                const policy::Policy& policy) const {
  const RewriteTemplate tmpl = build_template(sql, identity_shape(identity), policy, options_);
  return instantiate(tmpl, sql, identity);
}

namespace {
void* run_function(void* arg) {
  (*static_cast<const std::function<void()>*>(arg))();
  return nullptr;
}
}  // namespace

void run_with_large_stack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kRequiredStackBytes);
  pthread_t thread;
  const int rc = pthread_create(&thread, &attr, run_function,
                                const_cast<void*>(static_cast<const void*>(&fn)));
  pthread_attr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start a rewrite thread");
  pthread_join(thread, nullptr);
}

}  // namespace tenantgate::rewriter
