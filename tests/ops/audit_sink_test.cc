// The audit sink: lines reach the file, a reopen follows a rotated file, and
// a sink that cannot keep up drops (and counts) instead of blocking.
#include "ops/audit_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tenantgate::ops {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path temp_dir() {
  char tmpl[] = "/tmp/tg_audit_sink_XXXXXX";
  return fs::path(mkdtemp(tmpl));
}

TEST(AuditSinkTest, WritesLinesAndFollowsRotation) {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "audit.jsonl";
  {
    AuditSink sink(file.string(), 100);
    EXPECT_TRUE(sink.submit("one\n"));
    sink.flush();
    EXPECT_EQ(read_file(file), "one\n");
    fs::rename(file, dir / "audit.jsonl.1");
    sink.reopen();
    EXPECT_TRUE(sink.submit("two\n"));
    sink.flush();
    EXPECT_EQ(read_file(dir / "audit.jsonl.1"), "one\n");
    EXPECT_EQ(read_file(file), "two\n");
    EXPECT_EQ(sink.counts().written, 2u);
    EXPECT_EQ(sink.counts().reopened, 1u);
    EXPECT_TRUE(sink.submit("three\n"));
  }  // the destructor writes what is queued
  EXPECT_EQ(read_file(file), "two\nthree\n");
  fs::remove_all(dir);
}

TEST(AuditSinkTest, AFileThatCannotBeOpenedIsAnError) {
  EXPECT_THROW(AuditSink("/nonexistent-dir/audit.jsonl", 10), std::runtime_error);
}

TEST(AuditSinkTest, DropsInsteadOfBlockingWhenTheSinkCannotKeepUp) {
  // A pipe nobody reads: once its buffer is full the writer thread blocks in
  // fwrite, and every further line has to wait in the queue or be dropped.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
  const std::string path = "/proc/self/fd/" + std::to_string(fds[1]);
  auto sink = std::make_unique<AuditSink>(path, 8);
  const std::string line(1024, 'x');
  const auto start = std::chrono::steady_clock::now();
  uint64_t accepted = 0;
  for (int i = 0; i < 2000; ++i) accepted += sink->submit(line + "\n") ? 1 : 0;
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const AuditCounts counts = sink->counts();
  EXPECT_EQ(accepted + counts.dropped, 2000u);
  EXPECT_GT(counts.dropped, 1000u);
  // 2000 submits returned although the pipe holds only a few lines: nothing
  // waited for the writer (the bound is generous; this is not a timing test).
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  // Drain the pipe so that the writer can finish, then close.
  std::thread reader([fd = fds[0]] {
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0) {
    }
  });
  sink.reset();
  close(fds[1]);
  reader.join();
  close(fds[0]);
}

}  // namespace
}  // namespace tenantgate::ops
