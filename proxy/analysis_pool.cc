#include "proxy/analysis_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "rewriter/rewriter.h"

namespace tenantgate::proxy {
namespace {

FairQueue::Duration thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::duration_cast<FairQueue::Duration>(std::chrono::seconds(ts.tv_sec) +
                                                         std::chrono::nanoseconds(ts.tv_nsec));
}

}  // namespace

AnalysisPool::AnalysisPool(Options options) : options_(options), queue_(options.limits) {
  if (options_.threads == 0) options_.threads = 1;
  for (unsigned i = 0; i < options_.threads; ++i) {
    threads_.push_back(rewriter::start_large_stack_thread([this] {
      // Best effort: a thread may always lower its own priority.
      if (options_.nice != 0) {
        (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), options_.nice);
      }
      work();
    }));
  }
}

AnalysisPool::~AnalysisPool() { stop(); }

void AnalysisPool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (pthread_t t : threads_) pthread_join(t, nullptr);
  threads_.clear();
  std::lock_guard lock(mutex_);
  tasks_.clear();
}

void AnalysisPool::submit(std::string tenant, Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // shutting down: the task is dropped
    const std::uint64_t id = ++next_id_;
    if (queue_.push(tenant, id, FairQueue::Clock::now())) {
      tasks_.emplace(id, std::move(task));
      task = nullptr;
    }
  }
  if (task) {
    task(Refusal::kTooMany);
    return;
  }
  wake_.notify_one();
}

void AnalysisPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stopping_) return;
    const auto now = FairQueue::Clock::now();
    auto expired = queue_.take_expired(now);
    if (!expired.empty()) {
      std::vector<Task> refused;
      for (const auto& pick : expired) {
        auto it = tasks_.find(pick.job);
        refused.push_back(std::move(it->second));
        tasks_.erase(it);
      }
      lock.unlock();
      for (auto& task : refused) task(Refusal::kTimedOut);
      refused.clear();
      lock.lock();
      continue;
    }
    auto pick = queue_.pop(now);
    if (!pick) {
      if (auto next = queue_.next_event(now)) {
        wake_.wait_until(lock, *next);
      } else {
        wake_.wait(lock);
      }
      continue;
    }
    auto it = tasks_.find(pick->job);
    Task task = std::move(it->second);
    tasks_.erase(it);
    // Another thread may have work now that this one has taken its pick.
    if (queue_.size() > 0) wake_.notify_one();
    lock.unlock();
    const auto cpu_before = thread_cpu_time();
    task(std::nullopt);
    const auto cpu = thread_cpu_time() - cpu_before;
    task = nullptr;
    lock.lock();
    queue_.charge(pick->tenant, cpu, FairQueue::Clock::now());
  }
}

}  // namespace tenantgate::proxy
