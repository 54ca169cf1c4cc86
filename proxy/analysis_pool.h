// A bounded pool of analysis threads for the work that must not run on the
// event loops: rewrites that miss the cache (parse, walk, deparse, verify can
// take a large fraction of a second for a hostile statement). The loops only
// frame, relay and look up the cache; a session hands a miss to the pool and
// awaits the result, so one tenant's expensive statements cannot take other
// tenants' turns on the loops.
//
// Which task runs next is FairQueue's decision (fair_queue.h): round robin
// between tenants, each with a CPU budget measured on the analysis thread
// (CLOCK_THREAD_CPUTIME_ID) and taken out of its token bucket. A task that
// waits past the queue timeout, or that finds its tenant's queue full, is
// refused instead of run.
//
// Threads have rewriter::kRequiredStackBytes of stack and run at a lower
// scheduling priority (nice) than the event loops, so that relaying wins the
// CPU when both want it.
//
// Thread-safety: submit() may be called from any thread. stop() (and the
// destructor) ends the threads, waiting for running tasks, and destroys
// queued tasks without calling them; call it before anything those tasks
// refer to goes. Tasks submitted after stop() are dropped.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/fair_queue.h"

namespace tenantgate::proxy {

class AnalysisPool {
 public:
  enum class Refusal {
    kTimedOut,  // waited longer than the queue timeout (over budget, or the pool was busy)
    kTooMany,   // the tenant already had the maximum number of tasks waiting
  };
  // Called exactly once: with nullopt on an analysis thread to do the work,
  // or with the reason it will not be done (on an analysis thread, or inline
  // in submit() for kTooMany). Must not throw.
  using Task = std::function<void(std::optional<Refusal>)>;

  struct Options {
    unsigned threads = 1;
    FairQueue::Limits limits;
    int nice = 10;  // added to the analysis threads' scheduling priority
  };

  explicit AnalysisPool(Options options);
  ~AnalysisPool();
  AnalysisPool(const AnalysisPool&) = delete;
  AnalysisPool& operator=(const AnalysisPool&) = delete;

  void submit(std::string tenant, Task task);
  void stop();

  [[nodiscard]] std::size_t threads() const { return threads_.size(); }

 private:
  void work();

  Options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  FairQueue queue_;
  std::unordered_map<std::uint64_t, Task> tasks_;
  std::uint64_t next_id_ = 0;
  bool stopping_ = false;
  std::vector<pthread_t> threads_;
};

}  // namespace tenantgate::proxy
