#include "policy/app_catalog.h"

#include <mutex>

namespace tenantgate::policy {

void AppCatalog::seal() {
  // The whole content, length-prefixed: exact, and small for real catalogs.
  std::string text;
  auto add = [&](std::string_view s) {
    text += std::to_string(s.size());
    text += ':';
    text += s;
  };
  auto add_name = [&](const QualifiedName& n) {
    add(n.schema);
    add(n.name);
  };
  for (const QualifiedName& f : functions) add_name(f);
  text += '|';
  for (const auto& [op, fs] : operators) {
    add(op);
    for (const QualifiedName& f : fs) add_name(f);
    text += ';';
  }
  text += '|';
  for (const auto& [type, fs] : types) {
    add(type);
    for (const QualifiedName& f : fs) add_name(f);
    text += ';';
  }
  // Interned: one id per distinct content for the life of the process (a
  // few entries: one per catalog version a database has been seen with).
  static std::mutex mutex;
  static std::map<std::string, std::uint64_t> ids;
  std::lock_guard lock(mutex);
  auto [it, inserted] = ids.emplace(std::move(text), ids.size() + 1);
  id = it->second;
}

}  // namespace tenantgate::policy
