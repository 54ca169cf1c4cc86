// A libpq client for the integration tests: connects with the conninfo given
// and runs the named steps (default: all), exiting non-zero with a message on
// the first result that differs from what PostgreSQL itself returns.
//
//   tg_libpq_client CONNINFO [simple] [prepared] [copy] [cancel]

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string& step, const std::string& what, PGconn* conn = nullptr) {
  std::fprintf(stderr, "FAIL %s: %s%s%s\n", step.c_str(), what.c_str(), conn ? " | libpq: " : "",
               conn ? PQerrorMessage(conn) : "");
  std::exit(1);
}

std::string sqlstate(const PGresult* res) {
  const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

// Runs a command and requires the given status; returns the result (owned by caller).
PGresult* exec_expect(PGconn* conn, const std::string& step, const char* sql, ExecStatusType want) {
  PGresult* res = PQexec(conn, sql);
  if (PQresultStatus(res) != want) {
    fail(step, std::string("'") + sql + "' returned " + PQresStatus(PQresultStatus(res)) + " " +
                   PQresultErrorMessage(res));
  }
  return res;
}

void expect_value(const std::string& step, const PGresult* res, int row, int col,
                  const std::string& want) {
  if (row >= PQntuples(res) || col >= PQnfields(res)) {
    fail(step, "missing row " + std::to_string(row) + " col " + std::to_string(col));
  }
  std::string got = PQgetisnull(res, row, col) ? "<null>" : PQgetvalue(res, row, col);
  if (got != want) fail(step, "expected '" + want + "', got '" + got + "'");
}

void step_simple(PGconn* conn) {
  const std::string step = "simple";
  PGresult* res = exec_expect(conn, step, "SELECT 1 AS one, 'two'::text AS two, NULL::int AS three",
                              PGRES_TUPLES_OK);
  if (PQnfields(res) != 3 || std::string(PQfname(res, 1)) != "two")
    fail(step, "wrong row description");
  expect_value(step, res, 0, 0, "1");
  expect_value(step, res, 0, 1, "two");
  expect_value(step, res, 0, 2, "<null>");
  PQclear(res);
  // Several statements in one Query: PQexec returns the last result.
  res = exec_expect(conn, step, "SELECT 1; SELECT 2; SELECT count(*) FROM generate_series(1, 500)",
                    PGRES_TUPLES_OK);
  expect_value(step, res, 0, 0, "500");
  PQclear(res);
  res = PQexec(conn, "SELECT 1/0");
  if (sqlstate(res) != "22012")
    fail(step, "division by zero gave SQLSTATE '" + sqlstate(res) + "'");
  PQclear(res);
  res = exec_expect(conn, step, "SELECT 'still usable'", PGRES_TUPLES_OK);
  expect_value(step, res, 0, 0, "still usable");
  PQclear(res);
}

void step_prepared(PGconn* conn) {
  const std::string step = "prepared";
  PGresult* res = PQprepare(conn, "tg_named", "SELECT $1::int + $2::int", 2, nullptr);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail(step, "PQprepare named", conn);
  PQclear(res);
  for (int i = 0; i < 3; ++i) {
    std::string a = std::to_string(40 + i);
    const char* values[2] = {a.c_str(), "2"};
    res = PQexecPrepared(conn, "tg_named", 2, values, nullptr, nullptr, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) fail(step, "PQexecPrepared named", conn);
    expect_value(step, res, 0, 0, std::to_string(42 + i));
    PQclear(res);
  }
  res = PQdescribePrepared(conn, "tg_named");
  if (PQresultStatus(res) != PGRES_COMMAND_OK || PQnparams(res) != 2 || PQparamtype(res, 0) != 23) {
    fail(step, "PQdescribePrepared named", conn);
  }
  PQclear(res);

  res = PQprepare(conn, "", "SELECT upper($1::text), $2::int8 * 2", 2, nullptr);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail(step, "PQprepare unnamed", conn);
  PQclear(res);
  const char* values[2] = {"abc", "21"};
  res = PQexecPrepared(conn, "", 2, values, nullptr, nullptr, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) fail(step, "PQexecPrepared unnamed", conn);
  expect_value(step, res, 0, 0, "ABC");
  expect_value(step, res, 0, 1, "42");
  PQclear(res);

  // Binary parameter and binary result through PQexecParams (unnamed statement).
  uint32_t net = htonl(1000);
  const char* bvalues[1] = {reinterpret_cast<const char*>(&net)};
  int lengths[1] = {4};
  int formats[1] = {1};
  Oid types[1] = {23};
  res = PQexecParams(conn, "SELECT $1::int4 + 1", 1, types, bvalues, lengths, formats, 1);
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQfformat(res, 0) != 1 ||
      PQgetlength(res, 0, 0) != 4) {
    fail(step, "PQexecParams binary", conn);
  }
  uint32_t got;
  std::memcpy(&got, PQgetvalue(res, 0, 0), 4);
  if (ntohl(got) != 1001) fail(step, "binary result " + std::to_string(ntohl(got)) + " != 1001");
  PQclear(res);

  // An unknown statement name is an error (26000) and the session stays usable.
  res = PQexecPrepared(conn, "tg_missing", 0, nullptr, nullptr, nullptr, 0);
  if (sqlstate(res) != "26000")
    fail(step, "missing statement gave SQLSTATE '" + sqlstate(res) + "'");
  PQclear(res);
  const char* again[2] = {"1", "1"};
  res = PQexecPrepared(conn, "tg_named", 2, again, nullptr, nullptr, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) fail(step, "named statement after error", conn);
  expect_value(step, res, 0, 0, "2");
  PQclear(res);
  PQclear(exec_expect(conn, step, "DEALLOCATE tg_named", PGRES_COMMAND_OK));
}

void step_copy(PGconn* conn) {
  const std::string step = "copy";
  const int rows = 2000;
  PQclear(
      exec_expect(conn, step, "CREATE TEMP TABLE tg_copy (id int, name text)", PGRES_COMMAND_OK));
  PQclear(exec_expect(conn, step, "COPY tg_copy FROM STDIN", PGRES_COPY_IN));
  std::string chunk;
  for (int i = 1; i <= rows; ++i) {
    chunk += std::to_string(i) + "\tname " + std::to_string(i) + "\n";
    if (chunk.size() > 4000 || i == rows) {
      if (PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())) != 1)
        fail(step, "PQputCopyData", conn);
      chunk.clear();
    }
  }
  if (PQputCopyEnd(conn, nullptr) != 1) fail(step, "PQputCopyEnd", conn);
  PGresult* res = PQgetResult(conn);
  if (PQresultStatus(res) != PGRES_COMMAND_OK ||
      std::string(PQcmdTuples(res)) != std::to_string(rows)) {
    fail(step,
         std::string("COPY FROM finished with ") + PQresStatus(PQresultStatus(res)) + " tuples '" +
             PQcmdTuples(res) + "'",
         conn);
  }
  PQclear(res);
  while ((res = PQgetResult(conn)) != nullptr) PQclear(res);

  res = exec_expect(conn, step, "SELECT count(*), sum(id) FROM tg_copy", PGRES_TUPLES_OK);
  expect_value(step, res, 0, 0, std::to_string(rows));
  expect_value(step, res, 0, 1, std::to_string(rows * (rows + 1) / 2));
  PQclear(res);

  PQclear(exec_expect(conn, step, "COPY tg_copy TO STDOUT", PGRES_COPY_OUT));
  std::string out;
  char* buf = nullptr;
  int n;
  while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
    out.append(buf, n);
    PQfreemem(buf);
  }
  if (n != -1) fail(step, "PQgetCopyData", conn);
  res = PQgetResult(conn);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) fail(step, "COPY TO result", conn);
  PQclear(res);
  while ((res = PQgetResult(conn)) != nullptr) PQclear(res);
  std::string expected;
  for (int i = 1; i <= rows; ++i)
    expected += std::to_string(i) + "\tname " + std::to_string(i) + "\n";
  if (out != expected)
    fail(step, "COPY TO returned " + std::to_string(out.size()) + " bytes, not the rows copied in");

  // A COPY FROM that the server rejects ends in an error and leaves the session usable.
  PQclear(exec_expect(conn, step, "COPY tg_copy FROM STDIN", PGRES_COPY_IN));
  const char bad[] = "not-a-number\tx\n";
  PQputCopyData(conn, bad, sizeof(bad) - 1);
  PQputCopyEnd(conn, nullptr);
  res = PQgetResult(conn);
  if (sqlstate(res) != "22P02") fail(step, "bad COPY row gave SQLSTATE '" + sqlstate(res) + "'");
  PQclear(res);
  while ((res = PQgetResult(conn)) != nullptr) PQclear(res);
  res = exec_expect(conn, step, "SELECT count(*) FROM tg_copy", PGRES_TUPLES_OK);
  expect_value(step, res, 0, 0, std::to_string(rows));
  PQclear(res);
}

void step_cancel(PGconn* conn) {
  const std::string step = "cancel";
  auto start = std::chrono::steady_clock::now();
  if (!PQsendQuery(conn, "SELECT pg_sleep(30)")) fail(step, "PQsendQuery", conn);
  PGcancel* cancel = PQgetCancel(conn);
  if (!cancel) fail(step, "PQgetCancel", conn);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Send the cancel, then wait for the result; a cancel that arrives before the
  // backend starts the statement is lost (as with PostgreSQL), so repeat once a second.
  PGresult* res = nullptr;
  for (int attempt = 0; attempt < 8 && !res; ++attempt) {
    char err[256];
    if (!PQcancel(cancel, err, sizeof(err))) fail(step, std::string("PQcancel: ") + err);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < until) {
      pollfd pfd{PQsocket(conn), POLLIN, 0};
      poll(&pfd, 1, 100);
      if (!PQconsumeInput(conn)) fail(step, "PQconsumeInput", conn);
      if (!PQisBusy(conn)) {
        res = PQgetResult(conn);
        break;
      }
    }
  }
  PQfreeCancel(cancel);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!res) fail(step, "no result 8 s after PQcancel");
  if (sqlstate(res) != "57014") {
    fail(step, "pg_sleep(30) ended with " + std::string(PQresStatus(PQresultStatus(res))) +
                   " SQLSTATE '" + sqlstate(res) + "' " + PQresultErrorMessage(res));
  }
  if (secs > 10) fail(step, "cancel took " + std::to_string(secs) + " s");
  PQclear(res);
  while ((res = PQgetResult(conn)) != nullptr) PQclear(res);
  res = exec_expect(conn, step, "SELECT 'after cancel'", PGRES_TUPLES_OK);
  expect_value(step, res, 0, 0, "after cancel");
  PQclear(res);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CONNINFO [simple|prepared|copy|cancel]...\n", argv[0]);
    return 2;
  }
  std::vector<std::string> steps(argv + 2, argv + argc);
  if (steps.empty()) steps = {"simple", "prepared", "copy", "cancel"};
  PGconn* conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) fail("connect", "PQconnectdb", conn);
  for (const auto& s : steps) {
    if (s == "simple")
      step_simple(conn);
    else if (s == "prepared")
      step_prepared(conn);
    else if (s == "copy")
      step_copy(conn);
    else if (s == "cancel")
      step_cancel(conn);
    else
      fail(s, "unknown step");
    std::printf("ok %s\n", s.c_str());
  }
  PQfinish(conn);
  return 0;
}
