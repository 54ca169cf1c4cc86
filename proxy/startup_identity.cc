#include "proxy/startup_identity.h"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tenantgate::proxy {
namespace {

// isspace() in the C locale, which is what pg_split_opts() sees for ASCII.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// GUC names compare case-insensitively (guc_name_compare); names given in
// "options" additionally have '-' turned into '_' (ParseLongOption), so the
// comparison folds both sides the same way.
std::string fold_name(std::string_view name, bool dashes_to_underscores) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) out.push_back(dashes_to_underscores && c == '-' ? '_' : ascii_lower(c));
  return out;
}

}  // namespace

// pg_split_opts(): whitespace separates arguments, a backslash makes the next
// character literal. PostgreSQL silently drops a trailing lone backslash; it
// is refused here because it can only be a mistake.
bool split_startup_options(std::string_view s, std::vector<std::string>& args) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i == s.size()) break;
    std::string arg;
    while (i < s.size() && !is_space(s[i])) {
      if (s[i] == '\\') {
        if (i + 1 == s.size()) return false;
        ++i;
      }
      arg.push_back(s[i++]);
    }
    args.push_back(std::move(arg));
  }
  return true;
}

namespace {

std::string escape_arg(std::string_view arg) {
  std::string out;
  for (char c : arg) {
    if (c == '\\' || is_space(c)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Switches of PostgreSQL's process_postgres_switches() that take an argument
// ("B:bc:C:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:"). Knowing them is what lets a
// cluster such as "-ec name=value" be read the way the backend reads it.
bool takes_argument(char c) {
  return c != '\0' && std::string_view("BcCDdfhkNprStvW-").find(c) != std::string_view::npos;
}

class Extractor {
 public:
  Extractor(std::string_view tenant_param, std::string_view user_param) {
    slots_[0] = {fold_name(tenant_param, true), tenant_param, &out_.tenant};
    slots_[1] = {fold_name(user_param, true), user_param, &out_.user};
    slots_[2] = {fold_name(kTokenSetting, true), kTokenSetting, &out_.token};
  }

  // A parameter of the start-up packet itself. True when it is an identity.
  bool take_param(std::string_view name, const std::string& value) {
    const std::string folded = fold_name(name, false);
    for (auto& slot : slots_) {
      if (folded == fold_name(slot_name(slot), false)) {
        set(slot, value);
        return true;
      }
    }
    return false;
  }

  // "name=value" from -c or --. True when it names an identity.
  bool take_setting(std::string_view setting) {
    const auto eq = setting.find('=');
    const std::string folded = fold_name(setting.substr(0, eq), true);
    for (auto& slot : slots_) {
      if (folded != slot.folded) continue;
      if (eq == std::string_view::npos) {
        fail(std::string(slot_name(slot)) + " in \"options\" has no value");
      } else {
        set(slot, std::string(setting.substr(eq + 1)));
      }
      return true;
    }
    return false;
  }

  // Reads "options" like process_postgres_switches() and returns the
  // re-encoded rest, or nullopt when nothing was taken out of it.
  std::optional<std::string> take_options(const std::string& options) {
    std::vector<std::string> args;
    if (!split_startup_options(options, args)) {
      fail("\"options\" ends with a lone backslash");
      return std::nullopt;
    }
    std::vector<std::string> kept;
    bool removed = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "--") {  // getopt: the end of switches; the rest is left to the backend
        kept.insert(kept.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        break;
      }
      if (arg.size() < 2 || arg[0] != '-') {
        kept.push_back(arg);
        continue;
      }
      // A cluster: flags, then at most one switch with an argument, which is
      // the rest of this word or else the next word.
      std::size_t j = 1;
      while (j < arg.size() && !takes_argument(arg[j])) ++j;
      if (j == arg.size()) {
        kept.push_back(arg);
        continue;
      }
      const char sw = arg[j];
      const bool attached = j + 1 < arg.size();
      if (!attached && i + 1 == args.size()) {  // missing argument: the backend reports it
        kept.push_back(arg);
        continue;
      }
      const std::string& value = attached ? arg : args[i + 1];
      const std::string_view optarg =
          attached ? std::string_view(value).substr(j + 1) : std::string_view(value);
      const bool identity = (sw == 'c' || sw == '-') && take_setting(optarg);
      if (identity) {
        removed = true;
        if (j > 1) kept.push_back(arg.substr(0, j));  // the flags before it
      } else {
        kept.push_back(arg);
        if (!attached) kept.push_back(args[i + 1]);
      }
      if (!attached) ++i;
    }
    if (!removed) return std::nullopt;
    std::string out;
    for (const auto& arg : kept) {
      if (!out.empty()) out.push_back(' ');
      out += escape_arg(arg);
    }
    return out;
  }

  bool failed() const { return error_.has_value(); }
  StartupIdentityError error() && { return StartupIdentityError{std::move(*error_)}; }
  StartupIdentity result() && { return std::move(out_); }
  StartupIdentity& out() { return out_; }

 private:
  struct Slot {
    std::string folded;
    std::string_view name;
    std::optional<std::string>* target = nullptr;
  };

  static std::string_view slot_name(const Slot& slot) { return slot.name; }

  void set(Slot& slot, std::string value) {
    if (slot.target->has_value() && **slot.target != value) {
      fail(std::string(slot_name(slot)) + " given twice with different values");
      return;
    }
    *slot.target = std::move(value);
  }

  void fail(std::string message) {
    if (!error_) error_ = std::move(message);
  }

  StartupIdentity out_;
  Slot slots_[3];
  std::optional<std::string> error_;
};

}  // namespace

std::variant<StartupIdentity, StartupIdentityError> extract_startup_identity(
    const StartupParams& params, std::string_view tenant_param, std::string_view user_param) {
  Extractor ex(tenant_param, user_param);
  for (const auto& [name, value] : params) {
    if (name == "options") {
      auto rest = ex.take_options(value);
      if (!rest) {
        ex.out().forwarded.emplace_back(name, value);
      } else if (!rest->empty()) {
        ex.out().forwarded.emplace_back(name, std::move(*rest));
      }
      continue;
    }
    if (!ex.take_param(name, value)) ex.out().forwarded.emplace_back(name, value);
  }
  if (ex.failed()) return std::move(ex).error();
  return std::move(ex).result();
}

}  // namespace tenantgate::proxy
