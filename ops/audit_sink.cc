#include "ops/audit_sink.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace tenantgate::ops {

namespace {
constexpr std::chrono::milliseconds kLinger{5};
}  // namespace

AuditSink::AuditSink(std::string path, std::size_t capacity)
    : path_(std::move(path)), capacity_(capacity == 0 ? 1 : capacity) {
  if (path_.empty()) {
    out_ = stdout;
  } else if (!open_file()) {
    throw std::runtime_error("audit.file " + path_ + ": " + std::strerror(errno));
  }
  writer_ = std::thread([this] { run(); });
}

AuditSink::~AuditSink() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
  if (out_ && out_ != stdout) std::fclose(out_);
}

bool AuditSink::open_file() {
  std::FILE* f = std::fopen(path_.c_str(), "ae");
  if (!f) return false;
  if (out_ && out_ != stdout) std::fclose(out_);
  out_ = f;
  return true;
}

bool AuditSink::submit(std::string line) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= capacity_) {
      ++dropped_;
      return false;
    }
    queue_.push_back(std::move(line));
  }
  wake_.notify_one();
  return true;
}

void AuditSink::reopen() {
  {
    std::lock_guard lock(mutex_);
    reopen_ = true;
  }
  wake_.notify_one();
}

AuditCounts AuditSink::counts() const {
  std::lock_guard lock(mutex_);
  return {written_, dropped_, reopened_};
}

void AuditSink::flush() {
  std::unique_lock lock(mutex_);
  flush_requested_ = true;
  wake_.notify_one();
  drained_.wait(lock, [&] { return queue_.empty() && !writing_; });
  flush_requested_ = false;
}

void AuditSink::run() {
  std::deque<std::string> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || reopen_ || !queue_.empty(); });
    if (reopen_) {
      reopen_ = false;
      lock.unlock();
      const bool ok = path_.empty() || open_file();
      lock.lock();
      if (ok) ++reopened_;
      if (!ok) {
        std::fprintf(stderr,
                     "tenantgate: audit.file %s cannot be reopened: %s; keeping the "
                     "open file\n",
                     path_.c_str(), std::strerror(errno));
      }
    }
    if (queue_.empty()) {
      if (stop_) break;
      continue;
    }
    // Let a batch gather for a few milliseconds: one write and one flush per
    // batch instead of per line keeps the writer's CPU (and syscalls) small
    // under load, on machines where it shares cores with the event loops.
    if (!stop_ && !flush_requested_) {
      wake_.wait_for(lock, kLinger,
                     [&] { return stop_ || flush_requested_ || queue_.size() >= capacity_ / 2; });
    }
    batch.swap(queue_);
    writing_ = true;
    lock.unlock();
    for (const auto& line : batch) std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
    lock.lock();
    written_ += batch.size();
    batch.clear();
    writing_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

}  // namespace tenantgate::ops
