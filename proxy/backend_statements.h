// Which prepared statements one pooled backend connection holds, for
// transaction mode, where clients share backends (docs/design.md, "Pooled
// backends"). A client's statement names mean nothing on a shared backend:
// two clients may both prepare "s1", and a client's next transaction may run
// on a backend that never saw its Parse. So the session keeps, per client,
// what each of its names stands for (the statement as sent to the backend,
// after rewriting, with its parameter types), and each backend keeps this
// cache: the statements it holds under names of its own ("tg_s1",
// "tg_s2", ...), shared by every client whose statement is the same.
//
// Before a Bind (or Describe, or Execute of a statement) the session asks
// ensure(): the backend's name for the statement, and whether a Parse must
// go first, plus the names to Close first when the cache is full (least
// recently used first). Statements used since begin_batch() are never
// evicted, so a pipeline that uses many statements keeps them all until its
// Sync, even above the capacity. Parse and Close the session sends on its own
// are answered by the backend; their replies are the session's to drop, not
// the client's (ParseComplete, CloseComplete).
//
// Pure: no I/O. Not thread-safe: owned by the pooled connection, used by the
// one session that holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tenantgate::proxy {

// What a backend statement is: the text the backend parses and the parameter
// types the Parse declares (0: unspecified). Two clients' statements with
// the same definition share one backend statement.
struct StatementDefinition {
  std::string sql;
  std::vector<std::uint32_t> param_types;

  bool operator==(const StatementDefinition&) const = default;
};

class BackendStatements {
 public:
  explicit BackendStatements(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  struct Ensure {
    std::string name;                // the backend's name for the statement
    bool parse = false;              // send Parse(name, sql, types) before using it
    std::vector<std::string> close;  // send Close('S', each) first: evicted
  };
  // The backend name for `definition`, preparing it if needed.
  [[nodiscard]] Ensure ensure(const StatementDefinition& definition);

  // The backend answered the Parse of `name` with an error (or the session
  // will not send it): forget it, so that the next ensure() parses again.
  void parse_failed(std::string_view name);
  // A new batch (after the previous one's Sync came back): statements used
  // from now on are protected from eviction until the next call.
  void begin_batch() { ++batch_; }
  // The backend's statements are gone (DISCARD ALL, a reset): forget all.
  void clear();

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::optional<std::string> name_of(const StatementDefinition& definition) const;

 private:
  struct Entry {
    StatementDefinition definition;
    std::string name;
    std::uint64_t batch = 0;  // the last batch that used it
  };
  struct Hash {
    std::size_t operator()(const StatementDefinition& d) const;
  };
  using Lru = std::list<Entry>;  // most recently used at the front

  std::size_t capacity_;
  Lru lru_;
  std::unordered_map<StatementDefinition, Lru::iterator, Hash> entries_;
  std::uint64_t next_name_ = 1;
  std::uint64_t batch_ = 1;
};

}  // namespace tenantgate::proxy
