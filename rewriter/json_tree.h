// Reads libpg_query's JSON parse output (pg_query_parse) into the C++ classes
// generated from pg_query.proto.
//
// libpg_query writes the same tree as JSON or as protobuf; its JSON uses the
// proto's json_name keys, enum value names and omits defaults, so it maps onto
// the proto one to one. The JSON writer is several times faster than the
// protobuf one (whose protobuf-c packing dominated a parse), which is why the
// rewriter reads JSON. Anything unexpected (an unknown key, a value of the
// wrong kind, a repeated oneof, invalid UTF-8) fails the read: the caller
// refuses the statement.
//
// Recursive: call it on a thread with kRequiredStackBytes of stack.
#pragma once

#include <google/protobuf/message.h>

#include <string_view>
#include <utility>
#include <vector>

namespace tenantgate::rewriter {

enum class JsonTreeStatus {
  kOk,
  kMalformed,    // not the JSON libpg_query writes for pg_query.proto
  kTooDeep,      // nested deeper than max_depth objects and arrays
  kInvalidUtf8,  // a string is not valid UTF-8
  // An Integer node written as {}: libpg_query 15-4.0.0 writes a zero and
  // every negative value that way (its JSON writer only prints ival > 0), so
  // the tree cannot be known from the JSON. Read the protobuf output instead.
  kAmbiguousInteger,
};

struct JsonTreeOptions {
  int max_depth = 0;
  // Source positions ("location" keys) are skipped: the rewriter never reads
  // them, and trees without them compare equal byte for byte when they are
  // equal ignoring positions.
  bool skip_locations = true;
  // When set, the skipped positions of RangeVar nodes are kept here, keyed
  // by the RangeVar message (where the deparse can be skipped, the rewriter
  // edits the statement text at these positions instead; pg_tree.h).
  std::vector<std::pair<const google::protobuf::Message*, int>>* range_var_locations = nullptr;
};

// Merges `json` (one JSON object) into `out`; `out` should be empty.
[[nodiscard]] JsonTreeStatus read_json_tree(std::string_view json, google::protobuf::Message* out,
                                            const JsonTreeOptions& options);

}  // namespace tenantgate::rewriter
