#include "rewriter/rewriter.h"

#include <pthread.h>

#include <memory>
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
  return IdentityShape{identity.user.has_value(), identity.database, identity.catalog.get()};
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

pthread_t start_large_stack_thread(std::function<void()> fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kRequiredStackBytes);
  auto* heap_fn = new std::function<void()>(std::move(fn));
  pthread_t thread;
  const int rc = pthread_create(
      &thread, &attr,
      [](void* arg) -> void* {
        std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(arg));
        (*f)();
        return nullptr;
      },
      heap_fn);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete heap_fn;
    throw std::runtime_error("cannot start a thread with a large stack");
  }
  return thread;
}

bool cast_fits_identity(std::string_view cast, policy::ValueType type) {
  if (cast.empty()) return true;
  switch (type) {
    case policy::ValueType::kText:
      return cast == "text" || cast == "varchar";
    case policy::ValueType::kInt:
      // numeric reads "7" as 7 and refuses what canonical_value refuses too.
      return cast == "int2" || cast == "int4" || cast == "int8" || cast == "numeric";
    case policy::ValueType::kUuid:
      return cast == "uuid";
  }
  return false;
}

bool declared_type_fits_identity(int32_t type_oid, policy::ValueType type) {
  // pg_type OIDs: text 25, varchar 1043, int8 20, int2 21, int4 23, uuid 2950.
  if (type_oid == 0) return true;
  switch (type) {
    case policy::ValueType::kText:
      return type_oid == 25 || type_oid == 1043;
    case policy::ValueType::kInt:
      return type_oid == 20 || type_oid == 21 || type_oid == 23;
    case policy::ValueType::kUuid:
      return type_oid == 2950;
  }
  return false;
}

}  // namespace tenantgate::rewriter
