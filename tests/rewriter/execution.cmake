# Execution tests: rewritten SQL on a real PostgreSQL 15 compared with
# row-level security (execution_test.cc). Included from CMakeLists.txt here.
add_library(tg_test_pg_server STATIC ${PROJECT_SOURCE_DIR}/tests/support/pg_server.cc)
target_include_directories(tg_test_pg_server PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(tg_test_pg_server PUBLIC PkgConfig::LIBPQ)
target_compile_options(tg_test_pg_server PRIVATE ${TENANTGATE_WARNINGS})
# The one PostgreSQL launcher, shared with the integration tests and benchmarks.
target_compile_definitions(tg_test_pg_server PRIVATE
  TG_PG_LOCAL="${PROJECT_SOURCE_DIR}/scripts/pg_local.sh")

add_executable(tg_rewriter_execution_tests
  ${CMAKE_CURRENT_LIST_DIR}/execution_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/execution_queries.cc
)
target_link_libraries(tg_rewriter_execution_tests PRIVATE
  tg_rewriter tg_test_pg_server PkgConfig::LIBPQ GTest::gtest)
target_compile_options(tg_rewriter_execution_tests PRIVATE ${TENANTGATE_WARNINGS})
# One PostgreSQL server for the whole binary: register it as a single test.
add_test(NAME tg_rewriter_execution_tests COMMAND tg_rewriter_execution_tests)
set_tests_properties(tg_rewriter_execution_tests PROPERTIES TIMEOUT 300 LABELS execution)

# Row policies compared with CREATE POLICY (row_policy_execution_test.cc).
add_executable(tg_row_policy_execution_tests ${CMAKE_CURRENT_LIST_DIR}/row_policy_execution_test.cc)
target_link_libraries(tg_row_policy_execution_tests PRIVATE
  tg_rewriter tg_test_pg_server PkgConfig::LIBPQ GTest::gtest_main)
target_compile_options(tg_row_policy_execution_tests PRIVATE ${TENANTGATE_WARNINGS})
add_test(NAME tg_row_policy_execution_tests COMMAND tg_row_policy_execution_tests)
set_tests_properties(tg_row_policy_execution_tests PROPERTIES TIMEOUT 600 LABELS execution)
