// Where audit lines go: a file (reopened on request, for log rotation) or
// stdout, written by one thread of its own so that the event loops never
// wait for the disk.
//
// Lines reach the sink within a few milliseconds (the writer lets a batch
// gather for 5 ms, then writes and flushes it at once).
//
// Back-pressure policy: submit() only appends to a bounded in-memory queue.
// When the queue already holds `capacity` lines (the disk, or a pipe reader,
// cannot keep up) the line is dropped and counted; the proxy's traffic is
// never slowed by its audit trail. The count is exported as
// tenantgate_audit_events_dropped_total.
//
// Thread-safety: submit(), reopen() and counts() from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "ops/metrics.h"

namespace tenantgate::ops {

class AuditSink {
 public:
  // `path` empty: stdout. Throws std::runtime_error when the file cannot be
  // opened for appending.
  AuditSink(std::string path, std::size_t capacity);
  // Writes what is queued, then stops the writer.
  ~AuditSink();
  AuditSink(const AuditSink&) = delete;
  AuditSink& operator=(const AuditSink&) = delete;

  // Queues one line (with its newline). Never blocks on I/O; false when the
  // line was dropped because the queue is full.
  bool submit(std::string line);

  // The writer closes and opens the file again before its next write (after
  // logrotate moved it). A file that cannot be opened keeps the old one.
  void reopen();

  [[nodiscard]] AuditCounts counts() const;

  // Waits until every line queued so far has been written and flushed.
  void flush();

 private:
  void run();
  bool open_file();

  const std::string path_;
  const std::size_t capacity_;
  std::FILE* out_ = nullptr;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<std::string> queue_;
  bool reopen_ = false;
  bool stop_ = false;
  bool writing_ = false;
  bool flush_requested_ = false;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  uint64_t reopened_ = 0;
  std::thread writer_;
};

}  // namespace tenantgate::ops
